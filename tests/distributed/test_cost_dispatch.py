"""The CeleryRunner places by declared cost once workers declare capacity: each
build goes to the queue of the worker the policy chose, and a waiting build
says why (MemoryStore, fake broker and clocks; the real cluster is in
test_cost_placement_cluster.py)."""

from __future__ import annotations

import pytest
from test_dispatch import Clock, FakeBroker, make_repo, queue

from sauci.app import git_sources
from sauci.core.config import Settings
from sauci.core.models import Status, Worker
from sauci.core.resources import Resources
from sauci.distributed import CeleryRunner, own_queue
from sauci.storage.memory import MemoryStore

GIB = 1024**3


def pipeline(cpus: float, memory: str = "1GiB") -> str:
    return f"resources: {{cpus: {cpus}, memory: {memory}}}\nsteps:\n  a: {{run: 'true'}}\n"


@pytest.fixture
def world(tmp_path):
    clock = Clock()
    store = MemoryStore(clock=clock)
    broker = FakeBroker()
    # place_defer 0: these tests place at the instant builds are queued; the
    # defer (placement rule 4) is tested by itself below.
    settings = Settings(data_dir=tmp_path / "data", lost_timeout=30.0, place_defer=0)
    reads: list[str] = []
    sources = git_sources(settings)

    def counting(repo):  # counts the dispatcher's reads of .sauci.yml
        source = sources(repo)
        read = source.read_file

        def read_file(sha, path):
            reads.append(sha)
            return read(sha, path)

        source.read_file = read_file
        return source

    dispatcher = CeleryRunner(
        store=store,
        settings=settings,
        broker=broker,
        name="serve:test:1",
        sources=counting,
        clock=clock,
        monotonic=clock,
    )
    return store, broker, dispatcher, clock, tmp_path, reads


def worker(name, clock, *, cpus=2.0, memory=4 * GIB, slots=4, labels=()) -> Worker:
    return Worker(
        name=name,
        labels=labels,
        slots=slots,
        started_at=clock.now,
        heartbeat_at=clock.now,
        cpus=cpus,
        memory=memory,
    )


def test_a_heavy_build_goes_to_the_queue_of_the_worker_with_room(world):
    store, broker, dispatcher, clock, tmp, _ = world
    heavy = make_repo(tmp / "heavy", pipeline(3, "6GiB"))
    store.save_worker(worker("small", clock))
    store.save_worker(worker("big", clock, cpus=4, memory=16 * GIB))
    build_id = queue(store, heavy)
    dispatcher.tick()
    assert [(build_id, own_queue("big"))] == broker.sent
    assert own_queue("big") == "sauci@big"


def test_a_build_no_worker_has_room_for_waits_and_says_why(world):
    store, broker, dispatcher, clock, tmp, _ = world
    first = make_repo(tmp / "first", pipeline(1, "6GiB"))
    heavy = make_repo(tmp / "heavy", pipeline(1, "8GiB"))
    huge = make_repo(tmp / "huge", pipeline(1, "64GiB"))
    store.save_worker(worker("big", clock, cpus=4, memory=12 * GIB))
    running = queue(store, first)
    dispatcher.tick()
    store.claim_build("big", build_id=running)
    waits, never = queue(store, heavy), queue(store, huge)
    dispatcher.tick()
    assert [running] == [b for b, _ in broker.sent]
    assert "waiting for a worker: no worker with 8 GiB free" == store.get_build(waits).reason
    assert store.get_build(never).reason == (
        "waiting for a worker: no worker can ever hold 1 CPU, 64 GiB "
        "(the largest has 4 CPUs, 12 GiB)"
    )


def test_a_build_sent_and_not_yet_claimed_holds_its_room(world):
    # Between the send and the worker's claim the build is still queued: a
    # second round must not send the worker more than it has room for.
    store, broker, dispatcher, clock, tmp, _ = world
    repo = make_repo(tmp / "r", pipeline(1.5))
    store.save_worker(worker("w1", clock))
    ids = [queue(store, repo) for _ in range(2)]
    dispatcher.tick()
    clock.now += 1
    store.save_worker(worker("w1", clock))
    dispatcher.tick()
    assert [(ids[0], "sauci@w1")] == broker.sent
    reason = store.get_build(ids[1]).reason
    assert reason.startswith("waiting for a worker: no worker with 1.5 CPUs free")
    store.claim_build("w1", build_id=ids[0])
    dispatcher.tick()
    assert [ids[0]] == [b for b, _ in broker.sent]  # claimed: still holds its room
    store.finish_build(ids[0], "w1", status=Status.PASSED, reason=None, finished_at=clock.now)
    clock.now += 1
    store.save_worker(worker("w1", clock))
    dispatcher.tick()
    assert [ids[0], ids[1]] == [b for b, _ in broker.sent]
    assert store.get_build(ids[1]).reason is None  # sent: it waits no more


def test_a_message_never_claimed_is_placed_again_after_the_resend_time(world):
    store, broker, dispatcher, clock, tmp, _ = world
    repo = make_repo(tmp / "r", pipeline(1))
    store.save_worker(worker("gone", clock))
    build_id = queue(store, repo)
    dispatcher.tick()
    clock.now += dispatcher.resend_after + 1
    store.save_worker(worker("other", clock))  # "gone" stopped heartbeating
    dispatcher.tick()
    assert [(build_id, "sauci@gone"), (build_id, "sauci@other")] == broker.sent


def test_labels_still_decide_which_workers_may_take_a_build(world):
    store, broker, dispatcher, clock, tmp, _ = world
    gpu = make_repo(tmp / "gpu", "runs_on: [gpu]\n" + pipeline(1))
    store.save_worker(worker("plain", clock, cpus=8, memory=32 * GIB))
    build_id = queue(store, gpu)
    dispatcher.tick()
    assert ([], "waiting for a worker with labels: gpu") == (
        broker.sent,
        store.get_build(build_id).reason,
    )
    store.save_worker(worker("gpu-box", clock, labels=("gpu",)))
    dispatcher.tick()
    assert [(build_id, "sauci@gpu-box")] == broker.sent


def test_builds_that_declare_nothing_take_one_slot_share(world):
    store, broker, dispatcher, clock, tmp, _ = world
    repo = make_repo(tmp / "r", "steps:\n  a: {run: 'true'}\n")
    store.save_worker(worker("w1", clock, cpus=2, slots=2))
    ids = [queue(store, repo) for _ in range(5)]
    dispatcher.tick()
    # Two at once, and one ahead per slot (sauci.distributed._ahead).
    assert ids[:4] == [b for b, _ in broker.sent]
    assert "waiting for a worker: every worker runs its --max-builds" == (
        store.get_build(ids[4]).reason
    )


def test_the_pipeline_of_a_commit_is_read_once_for_all_its_builds(world):
    store, broker, dispatcher, clock, tmp, reads = world
    repo = make_repo(tmp / "r", pipeline(0.5))
    store.save_worker(worker("w1", clock, cpus=1, slots=8))
    for _ in range(6):
        queue(store, repo)
    dispatcher.tick()
    clock.now += 1
    store.save_worker(worker("w1", clock, cpus=1, slots=8))
    dispatcher.tick()
    assert 2 == len(broker.sent)
    # One read of the commit's pipeline, for the cost and the runs_on of all six.
    assert 1 == len(reads)


def test_a_heavy_repository_does_not_keep_a_light_one_waiting(world):
    # Weighted fair queueing across rounds: the repository that has been
    # served least goes first, so a queue of heavy builds pushed first does
    # not hold the light one back once room frees.
    store, broker, dispatcher, clock, tmp, _ = world
    heavy = make_repo(tmp / "heavy", pipeline(2))
    light = make_repo(tmp / "light", pipeline(0.5))
    store.save_worker(worker("w1", clock))
    heavies = [queue(store, heavy) for _ in range(3)]
    dispatcher.tick()
    store.claim_build("w1", build_id=heavies[0])
    clock.now += 5
    small = queue(store, light)
    store.save_worker(worker("w1", clock))
    dispatcher.tick()
    store.finish_build(heavies[0], "w1", status=Status.PASSED, reason=None, finished_at=clock.now)
    clock.now += 1
    store.save_worker(worker("w1", clock))
    dispatcher.tick()
    assert [heavies[0], small] == [b for b, _ in broker.sent]


def test_a_heavy_build_deferred_from_the_last_free_worker_leaves_it_to_a_light_one(world):
    # Placement rule 4 through the dispatcher: two heavy builds pushed, one
    # sent; the other would take the last free worker whole and waits
    # place_defer, and a light build queued meanwhile is sent there first.
    store, broker, dispatcher, clock, tmp, _ = world
    dispatcher.placer.defer = 0.1
    heavy = make_repo(tmp / "heavy", pipeline(2))
    light = make_repo(tmp / "light", pipeline(0.5))
    store.save_worker(worker("w1", clock))
    store.save_worker(worker("w2", clock))
    heavies = [queue(store, heavy) for _ in range(2)]
    dispatcher.tick()
    assert [heavies[0]] == [b for b, _ in broker.sent]
    assert "deferred 0.1 s" in store.get_build(heavies[1]).reason
    clock.now += 0.03
    small = queue(store, light)
    dispatcher.tick()
    assert [heavies[0], small] == [b for b, _ in broker.sent]
    # Once the defer has passed, with no lighter build in sight, it goes.
    store.claim_build("w1", build_id=heavies[0])
    store.claim_build("w2", build_id=small)
    store.finish_build(small, "w2", status=Status.PASSED, reason=None, finished_at=clock.now)
    clock.now += 0.2
    dispatcher.tick()
    assert [heavies[0], small, heavies[1]] == [b for b, _ in broker.sent]


def test_the_server_status_and_sauci_status_show_each_worker_s_room(world, tmp_path):
    import json
    import os
    import subprocess
    import sys

    store, _, dispatcher, clock, tmp, _ = world
    repo = make_repo(tmp / "r", pipeline(1.5, "2GiB"))
    store.save_worker(worker("w1", clock))
    queue(store, repo)
    dispatcher.tick()
    rooms = dispatcher.worker_rooms()
    assert [
        {"name": "w1", "cpus": 2.0, "memory": 4 * GIB, "cpus_used": 1.5,
         "memory_used": 2 * GIB, "builds": 1, "slots": 4}
    ] == rooms  # fmt: skip
    data = tmp_path / "status"
    data.mkdir(mode=0o700)
    status = {"name": "serve:x:1", "pid": 1, "started_at": clock.now, "heartbeat": clock.now}
    (data / "server.json").write_text(json.dumps({**status, "workers": rooms}))
    shown = subprocess.run(
        [sys.executable, "-m", "sauci", "status", "--color", "never"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "SAUCI_DATA_DIR": str(data), "SAUCI_STORE": ""},
    )
    assert "worker w1: 1.5/2 CPUs, 2.0/4.0 GiB, 1/4 builds in use" in shown.stdout, (
        shown.stdout + shown.stderr
    )


def test_a_worker_whose_slots_are_all_taken_is_sent_its_next_builds_ahead(world):
    # The messages wait in the worker's own queue (Celery takes no more than
    # its free slots), so each slot that frees takes one with no round trip
    # through the server; one build ahead per slot, no more.
    store, broker, dispatcher, clock, tmp, _ = world
    repo = make_repo(tmp / "r", "steps:\n  a: {run: 'true'}\n")
    store.save_worker(worker("w1", clock, cpus=2, slots=2))
    ids = [queue(store, repo) for _ in range(6)]
    dispatcher.tick()
    assert [(i, "sauci@w1") for i in ids[:4]] == broker.sent
    assert store.get_build(ids[3]).reason is None  # sent: it waits no more
    for build_id in ids[:2]:
        store.claim_build("w1", build_id=build_id)
    dispatcher.tick()
    assert ids[:4] == [b for b, _ in broker.sent]  # still two ahead
    store.finish_build(ids[0], "w1", status=Status.PASSED, reason=None, finished_at=clock.now)
    dispatcher.tick()  # woken by the end: the slot is the first ahead's, the next goes ahead
    assert ids[:5] == [b for b, _ in broker.sent]
    assert "waiting for a worker: every worker runs its --max-builds" == (
        store.get_build(ids[5]).reason
    )


def test_a_build_sent_ahead_goes_also_to_a_worker_whose_slot_frees_first(world):
    store, broker, dispatcher, clock, tmp, _ = world
    repo = make_repo(tmp / "r", "steps:\n  a: {run: 'true'}\n")
    store.save_worker(worker("w1", clock, cpus=2, slots=1))
    ids = [queue(store, repo) for _ in range(2)]
    dispatcher.tick()
    assert (ids[1], "sauci@w1") == broker.sent[-1]
    store.save_worker(worker("w2", clock, cpus=2, slots=1))
    dispatcher.tick()
    # The store's claim decides which of the two runs it; the other drops its message.
    assert (ids[1], "sauci@w2") == broker.sent[-1]
    assert 3 == len(broker.sent)


def test_a_build_sent_ahead_fits_whichever_build_of_the_worker_ends_first(world):
    store, broker, dispatcher, clock, tmp, _ = world
    light = make_repo(tmp / "light", pipeline(0.5))
    heavy = make_repo(tmp / "heavy", pipeline(1.5))
    store.save_worker(worker("w1", clock, cpus=2, slots=2))
    running = [queue(store, light), queue(store, heavy)]
    dispatcher.tick()
    assert running == [b for b, _ in broker.sent]
    # 0.5 + 1.5 CPUs run: once the light one ends, 0.5 CPU is free, too
    # little for another 1.5; nothing goes ahead.
    second = queue(store, heavy)
    dispatcher.tick()
    assert running == [b for b, _ in broker.sent]
    # A light one fits then; the heavy one fits once both have ended and the
    # light one ahead of it started, whichever ends first.
    first = queue(store, light)
    dispatcher.tick()
    assert [*running, first, second] == [b for b, _ in broker.sent]


def test_a_burst_of_builds_of_one_commit_parses_its_pipeline_once(world, monkeypatch):
    from sauci.distributed import _routes

    store, _broker, dispatcher, clock, tmp, _ = world
    repo = make_repo(tmp / "r", "runs_on: [linux]\nsteps:\n  a: {run: 'true'}\n")
    store.save_worker(worker("w1", clock, labels=("linux",)))
    parses: list[str] = []
    parse = _routes.parse_pipeline
    monkeypatch.setattr(
        _routes, "parse_pipeline", lambda text, *a, **k: parses.append(text) or parse(text, *a, **k)
    )
    ids = [queue(store, repo) for _ in range(5)]
    dispatcher.tick()
    assert 1 == len(parses)
    assert all(("linux",) == store.get_build(i).runs_on for i in ids)


def test_a_build_ahead_of_long_builds_is_not_sent_again_while_they_run(world):
    # Its message waits in the worker's queue for as long as the worker's
    # builds run: the resend time (a message lost with a dead worker) does
    # not apply, nor, once a slot frees, to the hour it waited.
    store, broker, dispatcher, clock, tmp, _ = world
    repo = make_repo(tmp / "r", "steps:\n  a: {run: 'true'}\n")
    store.save_worker(worker("w1", clock, cpus=2, slots=1))
    ids = [queue(store, repo) for _ in range(2)]
    dispatcher.tick()
    store.claim_build("w1", build_id=ids[0])
    clock.now += 3600
    store.save_worker(worker("w1", clock, cpus=2, slots=1))
    dispatcher.tick()
    assert ids == [b for b, _ in broker.sent]
    store.finish_build(ids[0], "w1", status=Status.PASSED, reason=None, finished_at=clock.now)
    dispatcher.tick()
    dispatcher.tick()
    assert ids == [b for b, _ in broker.sent]


def test_workers_of_equal_builds_each_get_builds_ahead_and_none_is_sent_twice(world):
    # Every build costs one slot's share, and the queue has waited longer than
    # the hold time: the policy holds a worker for the oldest build, which
    # needs no more than a slot. That worker still gets builds ahead; without
    # them its freed slots took the builds ahead in the other worker's queue,
    # whose slots then first took messages of builds already running.
    store, broker, dispatcher, clock, tmp, _ = world
    repo = make_repo(tmp / "r", "steps:\n  a: {run: 'true'}\n")
    for name in ("w1", "w2"):
        store.save_worker(worker(name, clock, cpus=2, slots=2))
    ids = [queue(store, repo) for _ in range(24)]
    dispatcher.tick()

    def take(name: str) -> None:  # the worker's slots take its queue's messages in order
        mine = [b for b, q in broker.sent if q == f"sauci@{name}"]
        for build_id in [b for b in mine if store.get_build(b).status is Status.QUEUED][:2]:
            store.claim_build(name, build_id=build_id)

    for name in ("w1", "w2"):
        take(name)
    for _ in range(4):
        clock.now += 1.0
        for name in ("w1", "w2"):
            for build in store.list_builds(status=Status.RUNNING):
                if build.claimed_by == name:
                    store.finish_build(
                        build.id, name, status=Status.PASSED, reason=None, finished_at=clock.now
                    )
            take(name)
            for other in ("w1", "w2"):
                store.save_worker(worker(other, clock, cpus=2, slots=2))
            dispatcher.tick()
    sent = [b for b, _ in broker.sent]
    assert len(set(sent)) == len(sent)
    assert set(ids[: len(sent)]) == set(sent)
    assert {"sauci@w1", "sauci@w2"} == {q for _, q in broker.sent[-4:]}


def test_a_build_s_end_is_learnt_at_the_next_round_not_on_a_timer(world):
    # The expected duration decides when a worker is drained for a heavy
    # build (sauci.core.drain): a repository's first build's end is learnt at
    # the round after it, not when the history's 30 s are up.
    store, _broker, dispatcher, clock, tmp, _ = world
    repo = make_repo(tmp / "r", pipeline(1))
    store.save_worker(worker("w1", clock))
    first = queue(store, repo)
    dispatcher.tick()
    store.claim_build("w1", build_id=first)
    dispatcher.tick()
    clock.now += 2
    store.finish_build(first, "w1", status=Status.PASSED, reason=None, finished_at=clock.now)
    store.save_worker(worker("w1", clock))
    queue(store, repo)
    dispatcher.tick()
    name = store.get_build(first).repo
    assert {name: 2.0} == dict(dispatcher.placer.history.forecast([name]).durations)


def test_the_dispatcher_places_with_the_drain_wait_setting(world, tmp_path):
    import attrs

    store, broker, dispatcher, _clock, _, _ = world
    assert 1.0 == dispatcher.placer.wait_bound  # the default
    settings = attrs.evolve(dispatcher.settings, drain_wait=1.45)
    runner = CeleryRunner(
        store=store,
        settings=settings,
        broker=broker,
        name="serve:test:2",
        sources=git_sources(settings),
    )
    assert 1.45 == runner.placer.wait_bound


class _History:
    """Expected durations as a store of the mixed load's builds would give them."""

    def forecast(self, repos):
        from sauci.core.durations import Forecast

        return Forecast(durations={"heavy": 2.0, "light": 0.2}, arrivals={"light": 10.0})

    def ended(self, repo):
        pass


def _drain_case(**placer):
    """w2 runs four light builds to 2.2, w1 a heavy one to 2.7; the next heavy
    build waits, and light builds queued since 0.6: one round at 2.05."""
    from sauci.core.models import Build
    from sauci.distributed._placing import CostPlacer

    costs = {"heavy": Resources(cpus=2, memory=GIB), "light": Resources(cpus=0.5, memory=GIB // 4)}
    placer = CostPlacer(
        cost_of=lambda builds: [costs[b.repo] for b in builds],
        resend_after=60.0,
        history=_History(),  # type: ignore[arg-type]
        **placer,
    )
    running = [Build(id=1, repo="heavy", status=Status.RUNNING, claimed_by="w1", started_at=0.7)]
    running += [
        Build(id=10 + i, repo="light", status=Status.RUNNING, claimed_by="w2", started_at=2.0)
        for i in range(4)
    ]
    queued = [(Build(id=2, repo="heavy", queued_at=0.0), ())]
    queued += [(Build(id=100 + i, repo="light", queued_at=0.6 + 0.1 * i), ()) for i in range(15)]
    live = [
        Worker(name=n, slots=4, started_at=0.0, heartbeat_at=2.0, cpus=2.0, memory=4 * GIB)
        for n in ("w1", "w2")
    ]
    return placer.plan(queued, running, live, now=2.05, mono=2.05)


def test_the_drain_wait_setting_bounds_how_long_lighter_builds_may_wait():
    # With lighter builds allowed to wait 3 s (the `drain_wait` setting), w2
    # is drained for the heavy build now; with the default 1 s, it is not.
    assert "w2 is held for it" in _drain_case(wait_bound=3.0).waiting[2]
    assert "w2 is held for it" not in _drain_case(wait_bound=1.0).waiting[2]
