"""The CeleryRunner's decisions (what to send, which workers are lost), on a
MemoryStore with a fake broker and fake clocks."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from sauci.app import git_sources
from sauci.core.config import Settings
from sauci.core.events import subscribe
from sauci.core.models import BuildRequest, Status, Worker
from sauci.core.scheduler import Scheduler
from sauci.distributed import CeleryRunner
from sauci.exceptions import StoreError
from sauci.storage.memory import MemoryStore


class FakeBroker:
    def __init__(self) -> None:
        self.sent: list[tuple[int, str]] = []
        self.closed = False

    def check(self) -> None:
        pass

    def send(self, build_id: int, queue: str) -> None:
        self.sent.append((build_id, queue))

    def close(self) -> None:
        self.closed = True


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def make_repo(path: Path, pipeline: str) -> str:
    path.mkdir()
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "t"}
    env["GIT_COMMITTER_EMAIL"] = "t@x"
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True)
    (path / ".sauci.yml").write_text(pipeline)
    subprocess.run(["git", "-C", str(path), "add", "."], check=True)
    subprocess.run(
        ["git", "-C", str(path), "commit", "-qm", "init"],
        check=True,
        env={**env, "PATH": "/usr/bin:/bin"},
    )
    return str(path)


@pytest.fixture
def world(tmp_path):
    clock = Clock()
    store = MemoryStore(clock=clock)
    broker = FakeBroker()
    settings = Settings(data_dir=tmp_path / "data", lost_timeout=30.0, attempts=2)
    dispatcher = CeleryRunner(
        store=store,
        settings=settings,
        broker=broker,
        name="serve:test:1",
        sources=git_sources(settings),
        clock=clock,
        monotonic=clock,
    )
    return store, broker, dispatcher, clock, tmp_path


def worker(name: str, clock: Clock, labels=(), state="online", running=()) -> Worker:
    return Worker(
        name=name,
        labels=labels,
        slots=2,
        running=running,
        started_at=clock.now,
        heartbeat_at=clock.now,
        state=state,
    )


def queue(store, repo: str) -> int:
    return Scheduler(store).enqueue(BuildRequest(repo=repo, ref="refs/heads/main")).id


def test_a_build_goes_to_the_queue_of_its_labels_and_records_them(world):
    store, broker, dispatcher, clock, tmp = world
    repo = make_repo(tmp / "r", "runs_on: [linux, docker]\nsteps:\n  a: {run: 'true'}\n")
    store.save_worker(worker("w1", clock, labels=("docker", "linux", "x")))
    build_id = queue(store, repo)
    dispatcher.tick()
    assert [(build_id, "sauci.docker+linux")] == broker.sent
    build = store.get_build(build_id)
    assert ("docker", "linux") == build.runs_on
    assert 40 == len(build.sha)  # the commit whose runs_on was read is the one built
    assert ("t <t@x>", "init") == (build.author, build.message)


def test_a_build_is_sent_once(world):
    store, broker, dispatcher, clock, tmp = world
    repo = make_repo(tmp / "r", "steps:\n  a: {run: 'true'}\n")
    store.save_worker(worker("w1", clock))
    queue(store, repo)
    dispatcher.tick()
    dispatcher.tick()
    assert 1 == len(broker.sent)


def test_without_a_worker_with_the_labels_the_build_waits_with_the_reason(world):
    store, broker, dispatcher, clock, tmp = world
    repo = make_repo(tmp / "r", "runs_on: gpu\nsteps:\n  a: {run: 'true'}\n")
    store.save_worker(worker("w1", clock, labels=("linux",)))
    store.save_worker(worker("w2", clock, labels=("gpu",), state="stopping"))
    build_id = queue(store, repo)
    dispatcher.tick()
    assert [] == broker.sent
    build = store.get_build(build_id)
    assert (Status.QUEUED, "waiting for a worker with labels: gpu") == (build.status, build.reason)
    store.save_worker(worker("w3", clock, labels=("gpu", "linux")))
    dispatcher.tick()
    assert [(build_id, "sauci.gpu")] == broker.sent
    assert store.get_build(build_id).reason is None


def test_a_worker_whose_heartbeat_stopped_is_not_live(world):
    store, _broker, dispatcher, clock, tmp = world
    repo = make_repo(tmp / "r", "steps:\n  a: {run: 'true'}\n")
    store.save_worker(worker("w1", clock))
    assert ["w1"] == [w.name for w in dispatcher.live_workers()]
    clock.now += 31
    assert [] == dispatcher.live_workers()
    build_id = queue(store, repo)
    dispatcher.tick()
    assert "waiting for a worker" == store.get_build(build_id).reason


def test_a_broken_pipeline_ends_the_build_errored_with_the_parse_error(world):
    store, broker, dispatcher, clock, tmp = world
    repo = make_repo(tmp / "r", "runs_on: [a b]\nsteps:\n  a: {run: 'true'}\n")
    store.save_worker(worker("w1", clock))
    build_id = queue(store, repo)
    dispatcher.tick()
    build = store.get_build(build_id)
    assert [] == broker.sent
    assert Status.ERRORED == build.status
    assert ".sauci.yml:1:" in build.reason and "'a b'" in build.reason


def test_a_missing_pipeline_ends_the_build_errored(world):
    store, _broker, dispatcher, _clock, tmp = world
    repo = make_repo(tmp / "r", "")
    (Path(repo) / ".sauci.yml").unlink()
    subprocess.run(["git", "-C", repo, "commit", "-qam", "rm"], check=True)
    build_id = queue(store, repo)
    dispatcher.tick()
    assert Status.ERRORED == store.get_build(build_id).status
    assert "no pipeline file" in store.get_build(build_id).reason


def lost_setup(world, attempts: int):
    store, _broker, dispatcher, clock, tmp = world
    dispatcher.settings = Settings(data_dir=tmp / "data", lost_timeout=30.0, attempts=attempts)
    repo = make_repo(tmp / "r", "steps:\n  a: {run: 'true'}\n")
    store.save_worker(worker("w1", clock))
    build_id = queue(store, repo)
    assert store.claim_build("w1", build_id=build_id) is not None
    assert [] == dispatcher.hand_on_lost()  # the server's loop sees the build start
    return store, dispatcher, clock, build_id


def test_a_silent_worker_s_build_is_ended_and_requeued_with_the_next_attempt(world):
    store, dispatcher, clock, _build_id = lost_setup(world, attempts=2)
    events = []
    unsubscribe = subscribe(lambda name, fields: events.append((name, fields)))
    try:
        clock.now += 20
        assert [] == dispatcher.hand_on_lost()
        clock.now += 11  # 31 s without a heartbeat
        (lost,) = dispatcher.hand_on_lost()
    finally:
        unsubscribe()
    assert Status.ERRORED == lost.status
    assert lost.reason.startswith("worker lost: w1 stopped heartbeating")
    new = store.list_builds(status=Status.QUEUED)[0]
    assert lost.reason.endswith(f"requeued as build {new.id}")
    assert 2 == new.attempt
    assert [("build_lost", lost.id)] == [(n, f["build"].id) for n, f in events if n == "build_lost"]


def test_a_heartbeat_keeps_a_build(world):
    store, dispatcher, clock, build_id = lost_setup(world, attempts=2)
    for _ in range(10):
        clock.now += 10
        assert store.heartbeat_build(build_id, "w1")
        assert [] == dispatcher.hand_on_lost()
    assert Status.RUNNING == store.get_build(build_id).status


def test_when_attempts_are_used_up_the_build_ends_worker_lost(world):
    store, dispatcher, clock, _build_id = lost_setup(world, attempts=1)
    clock.now += 31
    (lost,) = dispatcher.hand_on_lost()
    assert Status.ERRORED == lost.status
    assert "worker lost: w1" in lost.reason and "not tried again (attempt 1 of 1)" in lost.reason
    assert [] == store.list_builds(status=Status.QUEUED)


def test_a_result_recorded_by_the_worker_is_never_overwritten(world):
    store, dispatcher, clock, build_id = lost_setup(world, attempts=2)
    clock.now += 31
    store.finish_build(build_id, "w1", status=Status.PASSED, reason=None, finished_at=clock.now)
    assert [] == dispatcher.hand_on_lost()
    assert Status.PASSED == store.get_build(build_id).status
    assert [] == store.list_builds(status=Status.QUEUED)


def test_a_lost_build_that_was_asked_to_cancel_ends_cancelled_and_is_not_retried(world):
    store, dispatcher, clock, build_id = lost_setup(world, attempts=2)
    Scheduler(store).cancel(build_id, actor="ann")
    clock.now += 31
    (lost,) = dispatcher.hand_on_lost()
    assert Status.CANCELLED == lost.status
    assert lost.reason.startswith("cancelled by ann; worker lost: w1")
    assert [] == store.list_builds(status=Status.QUEUED)


def test_a_restarted_server_does_not_call_a_live_build_lost_at_first_sight(world):
    store, _broker, dispatcher, clock, tmp = world
    repo = make_repo(tmp / "r", "steps:\n  a: {run: 'true'}\n")
    build_id = queue(store, repo)
    store.claim_build("w1", build_id=build_id)
    clock.now += 3600  # the worker host's clock is an hour behind the server's
    assert [] == dispatcher.hand_on_lost()
    clock.now += 10
    assert store.heartbeat_build(build_id, "w1")
    clock.now += 25
    assert [] == dispatcher.hand_on_lost()  # the heartbeat changed: alive


def test_builds_run_in_process_are_not_judged(world):
    store, dispatcher, clock, _ = lost_setup(world, attempts=2)
    build = store.create_build(BuildRequest(repo="x"), status=Status.RUNNING)
    store.update_build(build.id, claimed_by="local-1234", started_at=clock.now)
    clock.now += 1000
    dispatcher.hand_on_lost()
    assert Status.RUNNING == store.get_build(build.id).status


def test_a_worker_silent_for_an_hour_is_forgotten_unless_it_holds_a_build(world):
    store, dispatcher, clock, _build_id = lost_setup(world, attempts=1)
    store.save_worker(worker("gone", clock))
    dispatcher.hand_on_lost()  # first sight of both records
    clock.now += 3601
    dispatcher.hand_on_lost()  # w1's build is ended as lost here; w1 still held it
    assert ["w1"] == [w.name for w in store.list_workers()]
    dispatcher.hand_on_lost()
    assert [] == store.list_workers()


def test_a_result_recorded_while_the_server_ends_the_build_wins_and_the_retry_is_dropped(world):
    store, dispatcher, clock, build_id = lost_setup(world, attempts=2)
    real_finish = store.finish_build

    def worker_first(build_id, worker, **fields):
        # The worker comes back and records its result just before the server's write.
        real_finish(build_id, "w1", status=Status.PASSED, reason=None, finished_at=clock.now)
        return real_finish(build_id, worker, **fields)

    store.finish_build = worker_first
    clock.now += 31
    assert [] == dispatcher.hand_on_lost()
    assert Status.PASSED == store.get_build(build_id).status
    (retry,) = [b for b in store.list_builds() if b.id != build_id]
    assert (Status.CANCELLED, f"not needed: build {build_id} recorded its own result") == (
        retry.status,
        retry.reason,
    )


class FlakyStore(MemoryStore):
    """A MemoryStore that can be made unreachable, as a database restart does."""

    down = False

    def _check(self) -> None:
        if self.down:
            raise StoreError("connection refused")

    def list_builds(self, **kwargs):
        self._check()
        return super().list_builds(**kwargs)

    def list_workers(self):
        self._check()
        return super().list_workers()


@pytest.fixture
def flaky(tmp_path):
    clock = Clock()
    store = FlakyStore(clock=clock)
    settings = Settings(data_dir=tmp_path / "data", lost_timeout=30.0, attempts=2)
    dispatcher = CeleryRunner(
        store=store,
        settings=settings,
        broker=FakeBroker(),
        name="serve:test:1",
        sources=git_sources(settings),
        clock=clock,
        monotonic=clock,
    )
    return store, dispatcher.broker, dispatcher, clock, tmp_path


def store_outage(store, dispatcher, clock, seconds: float) -> None:
    """The store is unreachable for ``seconds``: for the server and the workers alike."""
    store.down = True
    for _ in range(int(seconds)):
        clock.now += 1
        with pytest.raises(StoreError):
            dispatcher.tick()
    store.down = False


def test_a_store_outage_is_not_counted_as_a_worker_s_silence(flaky):
    store, dispatcher, clock, build_id = lost_setup(flaky, attempts=2)
    clock.now += 4  # the last heartbeat before the outage
    store_outage(store, dispatcher, clock, 40)  # nobody could write a heartbeat
    clock.now += 1
    assert [] == dispatcher.hand_on_lost()  # the store is back before the worker's next beat
    clock.now += 3
    assert store.heartbeat_build(build_id, "w1")
    assert [] == dispatcher.hand_on_lost()
    assert Status.RUNNING == store.get_build(build_id).status
    clock.now += 31  # silent now, with the store up: lost
    (lost,) = dispatcher.hand_on_lost()
    assert lost.reason.startswith("worker lost: w1")


def test_a_store_outage_does_not_make_workers_look_gone(flaky):
    store, broker, dispatcher, clock, tmp = flaky
    repo = make_repo(tmp / "r", "steps:\n  a: {run: 'true'}\n")
    store.save_worker(worker("w1", clock))
    dispatcher.tick()  # the server sees the worker
    store_outage(store, dispatcher, clock, 40)
    build_id = queue(store, repo)
    dispatcher.tick()
    assert [(build_id, "sauci")] == broker.sent
    assert store.get_build(build_id).reason is None


def test_a_retry_taken_meanwhile_by_a_worker_is_not_overwritten(world):
    # Two servers on one store: the other one sent the retry, and a worker
    # claimed it, before this server found that the lost build had its result.
    store, dispatcher, clock, build_id = lost_setup(world, attempts=2)
    real_finish = store.finish_build

    def others_first(lost_id, worker, **fields):
        (retry,) = store.list_builds(status=Status.QUEUED)
        store.claim_build("w2", build_id=retry.id)
        real_finish(lost_id, "w1", status=Status.PASSED, reason=None, finished_at=clock.now)
        return real_finish(lost_id, worker, **fields)

    store.finish_build = others_first
    clock.now += 31
    assert [] == dispatcher.hand_on_lost()
    (retry,) = [b for b in store.list_builds() if b.id != build_id]
    assert (Status.RUNNING, "w2", None) == (retry.status, retry.claimed_by, retry.reason)


def test_builds_are_sent_again_no_faster_than_free_slots_can_take_them(world):
    # A message can die with a worker that received it but never claimed its
    # build; the server then sends the build again. A free slot seen between two
    # builds must not send every waiting build again (the queue still has them).
    store, broker, dispatcher, clock, tmp = world
    repo = make_repo(tmp / "r", "steps:\n  a: {run: 'true'}\n")
    store.save_worker(worker("w1", clock, running=(101, 102)))
    ids = [queue(store, repo) for _ in range(6)]
    dispatcher.tick()
    assert ids == [b for b, _ in broker.sent]
    clock.now += 61
    store.save_worker(worker("w1", clock, running=(101,)))  # one slot free, for a moment
    dispatcher.tick()
    assert [ids[0]] == [b for b, _ in broker.sent[6:]]


def test_a_server_that_crashed_while_handing_a_build_on_makes_one_retry_not_two(world):
    store, dispatcher, clock, _build_id = lost_setup(world, attempts=2)
    real_finish = store.finish_build

    def crash(*args, **kwargs):
        raise RuntimeError("the server process died here")

    store.finish_build = crash
    clock.now += 31
    with pytest.raises(RuntimeError):
        dispatcher.hand_on_lost()  # the retry is made, the verdict not yet written
    store.finish_build = real_finish
    restarted = CeleryRunner(
        store=store,
        settings=dispatcher.settings,
        broker=FakeBroker(),
        name="serve:test:2",
        sources=git_sources(dispatcher.settings),
        clock=clock,
        monotonic=clock,
    )
    restarted.hand_on_lost()
    clock.now += 31
    (lost,) = restarted.hand_on_lost()
    (retry,) = store.list_builds(status=Status.QUEUED)
    assert lost.reason.endswith(f"requeued as build {retry.id}")
    assert 2 == retry.attempt


def test_a_second_server_too_late_to_hand_a_build_on_leaves_the_first_one_s_retry(world):
    store, dispatcher, clock, build_id = lost_setup(world, attempts=2)
    seen_running = store.get_build(build_id)  # the other server's view, read just before
    clock.now += 31
    (lost,) = dispatcher.hand_on_lost()
    other = CeleryRunner(
        store=store,
        settings=dispatcher.settings,
        broker=FakeBroker(),
        name="serve:other:1",
        sources=git_sources(dispatcher.settings),
    )
    assert other._lost(seen_running, "w1", 31.0) is None  # its compare-and-set fails
    (retry,) = store.list_builds(status=Status.QUEUED)
    assert lost.reason.endswith(f"requeued as build {retry.id}")
    assert 2 == len(store.list_builds())


def test_two_lost_builds_of_one_commit_get_a_retry_each(world):
    store, dispatcher, clock, first = lost_setup(world, attempts=2)
    build = store.get_build(first)
    second = store.create_build(
        BuildRequest(repo=build.repo, ref=build.ref, sha=build.sha, event=build.event)
    ).id
    assert store.claim_build("w1", build_id=second) is not None
    dispatcher.hand_on_lost()
    clock.now += 31
    lost = dispatcher.hand_on_lost()
    retries = {b.reason.rsplit(" ", 1)[1] for b in lost}
    assert (2, 2) == (len(lost), len(retries))
    assert 2 == len(store.list_builds(status=Status.QUEUED))


def test_after_stop_the_broker_is_closed_and_nothing_more_is_sent(world):
    """Server.stop() stops the CeleryRunner: a round still due sends nothing
    through a closed broker; the queued build waits for the next server."""
    store, broker, dispatcher, clock, tmp = world
    repo = make_repo(tmp / "r", "steps:\n  a: {run: 'true'}\n")
    store.save_worker(worker("w1", clock))
    build_id = queue(store, repo)
    dispatcher.stop(reason="SauCI server stopped", timeout=5.0)
    dispatcher.tick()
    assert (True, []) == (broker.closed, broker.sent)
    assert Status.QUEUED is store.get_build(build_id).status


def test_a_new_commits_pipeline_file_is_read_once_for_its_route_and_the_gate(tmp_path, monkeypatch):
    # The dispatcher's first round over a new commit reads its .sauci.yml for
    # the build's runs_on and again for GitHub's concurrency gate: with one
    # Source per repository for both, git is asked once, before the first send.
    import sauci.source.git as gitsource
    from sauci.app.server import build_server

    reads: list[str] = []
    file_at_commit, read_file = gitsource.file_at_commit, gitsource.read_file

    def counted_file_at_commit(repo, sha, path):
        reads.append(path)
        return file_at_commit(repo, sha, path)

    def counted_read_file(repo, rev, path):
        reads.append(path)
        return read_file(repo, rev, path)

    monkeypatch.setattr(gitsource, "file_at_commit", counted_file_at_commit)
    monkeypatch.setattr(gitsource, "read_file", counted_read_file)
    repo = make_repo(tmp_path / "repo", "steps:\n  s:\n    run: 'true'\n")
    store, broker = MemoryStore(), FakeBroker()
    server = build_server(
        store=store, settings=Settings(data_dir=tmp_path / "data"), repos=[], broker=broker
    )
    build = Scheduler(store).enqueue(BuildRequest(repo=repo, ref="refs/heads/main"))
    now = time.time()
    store.save_worker(Worker(name="w1", slots=2, started_at=now, heartbeat_at=now))
    server.runner.tick()
    assert [build.id] == [b for b, _queue in broker.sent]
    assert [".sauci.yml"] == reads
