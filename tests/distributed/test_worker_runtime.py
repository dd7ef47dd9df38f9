"""The worker's runtime without Celery: claims by id, drops duplicates, stops a
build it no longer owns, passes cancel requests on, keeps one name per worker."""

from __future__ import annotations

import threading
import time

import attrs
import pytest
from polling import wait_for
from test_dispatch import make_repo

from sauci.app.worker import build_worker
from sauci.core.config import Settings
from sauci.core.models import BuildRequest, Status
from sauci.core.scheduler import Scheduler
from sauci.distributed import WorkerRuntime
from sauci.exceptions import ConfigError
from sauci.sandbox.local import LocalSandbox
from sauci.storage.memory import MemoryStore
from sauci.testing.logs import capture_logs

DEADLINE = 30.0


@pytest.fixture
def setup(tmp_path):
    store = MemoryStore()
    settings = Settings(
        data_dir=tmp_path / "w", heartbeat_interval=0.1, worker_name="w1", sandbox="local"
    )
    runtime = build_worker(settings, store, sandbox=LocalSandbox(grace=0.5))
    runtime.start()
    yield store, runtime, tmp_path
    runtime.stop()


def start(runtime, build_id):
    result: list[str] = []
    thread = threading.Thread(target=lambda: result.append(runtime.run(build_id)))
    thread.start()
    return thread, result


def step_running(store, build_id):
    return any(s.status is Status.RUNNING for s in store.list_steps(build_id))


def test_a_build_is_claimed_by_id_and_a_duplicate_message_is_dropped(setup):
    store, runtime, tmp = setup
    repo = make_repo(tmp / "r", "steps:\n  a: {run: echo hi}\n")
    build_id = Scheduler(store).enqueue(BuildRequest(repo=repo, ref="refs/heads/main")).id
    assert "passed" == runtime.run(build_id)
    assert "dropped: not queued any more" == runtime.run(build_id)
    build = store.get_build(build_id)
    assert (Status.PASSED, "w1") == (build.status, build.claimed_by)
    assert b"hi\n" == store.read_log(build_id, "a")


def test_a_build_taken_away_is_stopped_here_and_its_result_dropped(setup):
    store, runtime, tmp = setup
    repo = make_repo(tmp / "r", "steps:\n  a: {run: sleep 30}\n")
    build_id = Scheduler(store).enqueue(BuildRequest(repo=repo, ref="refs/heads/main")).id
    thread, result = start(runtime, build_id)
    wait_for(lambda: step_running(store, build_id), "the step to start")
    # What the server does when it decided this worker was lost.
    store.finish_build(build_id, "w1", status=Status.ERRORED, reason="worker lost", finished_at=1)
    thread.join(DEADLINE)
    assert not thread.is_alive()
    build = store.get_build(build_id)
    assert (Status.ERRORED, "worker lost") == (build.status, build.reason)
    assert [Status.CANCELLED] == [s.status for s in store.list_steps(build_id)]
    assert ["errored"] == result


def test_a_cancel_request_in_the_store_ends_the_build_here(setup):
    store, runtime, tmp = setup
    repo = make_repo(tmp / "r", "steps:\n  a: {run: sleep 30}\n")
    build_id = Scheduler(store).enqueue(BuildRequest(repo=repo, ref="refs/heads/main")).id
    thread, _ = start(runtime, build_id)
    wait_for(lambda: step_running(store, build_id), "the step to start")
    Scheduler(store).cancel(build_id, actor="bo")
    thread.join(DEADLINE)
    build = store.get_build(build_id)
    assert (Status.CANCELLED, "cancelled by bo") == (build.status, build.reason)


def test_the_record_shows_running_builds_and_goes_when_the_worker_stops(setup):
    store, runtime, tmp = setup
    repo = make_repo(tmp / "r", "steps:\n  a: {run: sleep 30}\n")
    build_id = Scheduler(store).enqueue(BuildRequest(repo=repo, ref="refs/heads/main")).id
    thread, _ = start(runtime, build_id)
    wait_for(lambda: store.list_workers()[0].running == (build_id,), "the record to list it")
    wait_for(lambda: step_running(store, build_id), "the step to start")
    runtime.runner.cancel(build_id)
    thread.join(DEADLINE)
    wait_for(lambda: store.list_workers()[0].running == (), "the record to free the slot")
    runtime.stop()
    assert [] == store.list_workers()


def test_a_second_worker_with_the_same_name_is_refused(setup):
    store, runtime, _ = setup
    twin = build_worker(runtime.settings, store, sandbox=LocalSandbox())
    with pytest.raises(ConfigError, match="another sauci worker named 'w1'"):
        twin.start()


def runtime_on(store, tmp_path, host: str, **settings_kw) -> WorkerRuntime:
    """A worker named w1 as if on another machine: its own data dir and host name."""
    settings = Settings(
        data_dir=tmp_path / host, heartbeat_interval=0.1, worker_name="w1", **settings_kw
    )
    runtime = build_worker(settings, store, sandbox=LocalSandbox(grace=0.5))
    runtime.host = host
    return runtime


def test_the_same_name_on_another_host_is_refused_while_that_worker_lives(setup):
    store, runtime, tmp = setup
    twin = runtime_on(store, tmp, "other-host")
    with pytest.raises(ConfigError, match=r"named 'w1' is running on host '.+'.*own --name"):
        twin.start()
    assert [runtime.host] == [w.host for w in store.list_workers()]  # the live one's record


def test_the_name_of_a_worker_gone_from_another_host_can_be_taken(tmp_path):
    store = MemoryStore()
    gone = runtime_on(store, tmp_path, "old-host", lost_timeout=0.2)
    gone.start()
    gone._stop.set()  # its heartbeats stop, as after kill -9; its record stays
    gone._wake.set()
    gone._beat.join(5)
    time.sleep(0.3)
    successor = runtime_on(store, tmp_path, "new-host", lost_timeout=0.2)
    successor.start()
    try:
        assert ["new-host"] == [w.host for w in store.list_workers()]
    finally:
        successor.stop()
        gone._lock_file.close()


def test_two_hosts_that_take_one_name_at_once_say_so(tmp_path):
    store = MemoryStore()
    first = runtime_on(store, tmp_path, "host-a")
    second = runtime_on(store, tmp_path, "host-b")
    first.start()
    store.delete_worker("w1")  # as if both had looked before either wrote
    with capture_logs() as logs:
        second.start()
        try:
            wait_for(
                lambda: any(e["event"] == "worker_name_clash" for e in logs),
                "a heartbeat to notice the other host",
            )
        finally:
            second.stop()
            first.stop()
    clash = next(e for e in logs if e["event"] == "worker_name_clash")
    assert clash["log_level"] == "error" and clash["other_host"] in ("host-a", "host-b")


def test_a_message_that_comes_during_warm_shutdown_goes_back_to_the_broker(setup):
    pytest.importorskip("celery")
    from celery.exceptions import Reject

    from sauci.distributed import make_app
    from sauci.distributed._app import TASK

    store, runtime, tmp = setup
    repo = make_repo(tmp / "r", "steps:\n  a: {run: 'true'}\n")
    build_id = Scheduler(store).enqueue(BuildRequest(repo=repo, ref="refs/heads/main")).id
    app = make_app("memory://", runtime=runtime)
    runtime.stopping()
    with pytest.raises(Reject) as rejected:
        app.tasks[TASK](build_id)
    assert rejected.value.requeue  # not acknowledged: another worker takes it now
    assert Status.QUEUED == store.get_build(build_id).status


def test_each_app_runs_its_own_runtime(setup):
    pytest.importorskip("celery")
    from sauci.distributed import make_app
    from sauci.distributed._app import TASK

    _store, runtime, _tmp = setup
    app = make_app("memory://", runtime=runtime)
    make_app("memory://")  # the server's app in the same process: no runtime
    assert "dropped: not queued any more" == app.tasks[TASK](12345)


def test_a_running_build_no_longer_says_it_waits_for_a_worker(setup):
    # Sent, then its worker went away (the server wrote the reason), then a worker
    # with the labels took the message still in the queue.
    store, runtime, tmp = setup
    repo = make_repo(tmp / "r", "steps:\n  a: {run: sleep 30}\n")
    build_id = Scheduler(store).enqueue(BuildRequest(repo=repo, ref="refs/heads/main")).id
    store.update_build(build_id, reason="waiting for a worker with labels: gpu")
    thread, _ = start(runtime, build_id)
    wait_for(lambda: step_running(store, build_id), "the step to start")
    assert (Status.RUNNING, None) == (
        store.get_build(build_id).status,
        store.get_build(build_id).reason,
    )
    runtime.runner.cancel(build_id)
    thread.join(DEADLINE)


def test_a_django_settings_module_in_the_environment_does_not_reach_the_worker(monkeypatch):
    """Celery sets Django up in any process with DJANGO_SETTINGS_MODULE (its
    Django fixup); a worker started from a Django site's shell would then fail
    on settings it cannot import. SauCI's app has no fixups."""
    from sauci.distributed import make_app

    monkeypatch.setenv("DJANGO_SETTINGS_MODULE", "no_such_project.settings")
    app = make_app("memory://")
    assert [] == [fixup for fixup in app._fixups if fixup is not None]
    app.loader.init_worker()  # with the fixup: ImportError for no_such_project


def test_a_build_s_end_is_announced_once_recorded_and_its_slot_is_kept(setup):
    store, runtime, tmp = setup
    repo = make_repo(tmp / "r", "steps:\n  a: {run: 'echo hi > out.txt'}\n")
    seen: list[tuple[int, Status]] = []
    runtime.announce = lambda build_id, **_: seen.append(
        (build_id, store.get_build(build_id).status)
    )
    ids = [Scheduler(store).enqueue(BuildRequest(repo=repo, ref="refs/heads/main")).id]
    assert "passed" == runtime.run(ids[0])
    ids.append(Scheduler(store).enqueue(BuildRequest(repo=repo, ref="refs/heads/main")).id)
    assert "passed" == runtime.run(ids[1])
    # Announced after the end was written: a server woken by it sees the slot free.
    assert [(ids[0], Status.PASSED), (ids[1], Status.PASSED)] == seen
    slots = sorted(p.name for p in runtime.settings.workspaces_dir.iterdir() if p.is_dir())
    assert 1 <= len(slots) <= 2 and all("-w" in name for name in slots), slots


def test_a_message_whose_build_was_taken_elsewhere_announces_the_slot_free(setup):
    # A build sent ahead here and also to a worker whose slot freed first
    # (sauci.distributed._ahead): the claim here fails, and the server hears
    # at once that this slot is free, rather than at its next safety round.
    store, runtime, tmp = setup
    repo = make_repo(tmp / "r", "steps:\n  a: {run: 'true'}\n")
    seen: list[int] = []
    runtime.announce = seen.append
    build_id = Scheduler(store).enqueue(BuildRequest(repo=repo, ref="refs/heads/main")).id
    store.claim_build("w2", build_id=build_id)
    assert "dropped: not queued any more" == runtime.run(build_id)
    assert [build_id] == seen


def test_a_slot_that_claims_its_build_says_so_to_the_announcer(setup):
    # The announcer holds an end back until a slot took its next build: a
    # claim says so (Announcer.slot_taken); a message that claims nothing does not.
    store, runtime, tmp = setup
    repo = make_repo(tmp / "r", "steps:\n  a: {run: 'true'}\n")
    events: list[tuple[str, int | None]] = []
    runtime.announce = lambda build_id, **_: events.append(("announce", build_id))
    runtime.claimed = lambda: events.append(("claimed", None))
    taken = Scheduler(store).enqueue(BuildRequest(repo=repo, ref="refs/heads/main")).id
    store.claim_build("w2", build_id=taken)
    assert "dropped: not queued any more" == runtime.run(taken)
    build_id = Scheduler(store).enqueue(BuildRequest(repo=repo, ref="refs/heads/main")).id
    assert "passed" == runtime.run(build_id)
    assert [("announce", taken), ("claimed", None), ("announce", build_id)] == events


def test_an_end_with_slots_free_besides_is_announced_without_waiting(setup):
    # The dispatcher sends builds ahead only to a worker whose slots are all
    # taken (sauci.distributed._ahead): an end on a worker with another slot
    # free has no message waiting for its slot, so the announcer need not hold
    # it back (a heavy build waiting for a drained worker waited out the grace).
    store, runtime, tmp = setup
    runtime.settings = attrs.evolve(runtime.settings, slots=2)
    repo = make_repo(tmp / "r", "steps:\n  a: {run: 'true'}\n")
    waits: list[tuple[int, bool]] = []
    runtime.announce = lambda build_id, *, wait=True: waits.append((build_id, wait))
    build_id = Scheduler(store).enqueue(BuildRequest(repo=repo, ref="refs/heads/main")).id
    assert "passed" == runtime.run(build_id)
    assert [(build_id, False)] == waits


def test_an_end_on_a_worker_with_every_slot_taken_may_wait_for_the_next_claim(setup):
    store, runtime, tmp = setup
    runtime.settings = attrs.evolve(runtime.settings, slots=1)
    repo = make_repo(tmp / "r", "steps:\n  a: {run: 'true'}\n")
    waits: list[tuple[int, bool]] = []
    runtime.announce = lambda build_id, *, wait=True: waits.append((build_id, wait))
    build_id = Scheduler(store).enqueue(BuildRequest(repo=repo, ref="refs/heads/main")).id
    assert "passed" == runtime.run(build_id)
    assert [(build_id, True)] == waits


def test_the_sandbox_prepares_for_a_step_before_the_claim(tmp_path):
    # A message means a step starts within milliseconds: the sandbox's
    # preparation (on cgroup v1 a thread move that waits for the kernel and
    # meanwhile holds up the step cgroup's mkdir) starts before the claim's
    # store write, not after it.
    store = MemoryStore()
    states: list[Status] = []
    ids: list[int] = []

    class Recording(LocalSandbox):
        def prepare(self) -> None:
            if ids and not states:
                states.append(store.get_build(ids[0]).status)
            super().prepare()

    settings = Settings(data_dir=tmp_path / "w", worker_name="w1", sandbox="local")
    runtime = build_worker(settings, store, sandbox=Recording(grace=0.5))
    runtime.start()
    try:
        repo = make_repo(tmp_path / "r", "steps:\n  a: {run: 'true'}\n")
        ids.append(Scheduler(store).enqueue(BuildRequest(repo=repo, ref="refs/heads/main")).id)
        assert "passed" == runtime.run(ids[0])
    finally:
        runtime.stop()
    assert [Status.QUEUED] == states
