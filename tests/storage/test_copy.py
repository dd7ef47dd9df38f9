"""copy_store: everything arrives, a destination with builds is refused
unless merging, a merge is idempotent by build identity (an interrupted copy
is finished by merging again), and a copy that lost something fails its
verification."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sauci.core.models import (
    Artifact,
    BuildRequest,
    Event,
    Repo,
    Status,
    StepRun,
    TestCase,
    Worker,
)
from sauci.exceptions import ConfigError, StoreError
from sauci.storage.copy import copy_store, store_digest
from sauci.storage.memory import MemoryStore
from sauci.storage.sqlite import SQLiteStore


def _source(builds: int = 12) -> MemoryStore:
    store = MemoryStore()
    for i in range(builds):
        b = store.create_build(
            BuildRequest(repo=f"r{i % 3}", priority=i % 2, params={"i": str(i)}, attempt=1 + i % 2),
            status=Status.QUEUED if i % 4 else Status.RUNNING,
        )
        store.update_build(b.id, runs_on=["linux", f"l{i % 2}"][: i % 3])
        if i % 3 == 0:
            store.update_build(b.id, status="passed", started_at=10.0, finished_at=10.0 + i)
        elif i % 3 == 1:
            store.claim_build("w1", build_id=b.id)
            store.update_build(b.id, heartbeat_at=20.0 + i)
        for pos, name in enumerate(("build", "test")):
            store.save_step(StepRun(build_id=b.id, name=name, position=pos, status="passed"))
            store.append_log(b.id, name, bytes([i]) * 3000)
            store.append_log(b.id, name, b"tail\xff")
        store.add_test_results(b.id, "test", [TestCase(name=f"t{j}") for j in range(3)])
        store.add_test_results(b.id, "build", [TestCase(name="b", status="failed")])
        store.add_artifacts(b.id, "build", [Artifact(path=f"a{i}", size=i)])
        store.add_event(Event(kind="build_queued", at=float(i), build_id=b.id, data={"n": i}))
    store.add_event(Event(kind="server_started", at=99.0))
    store.save_repo(Repo(id="app", location="/srv/app", added_at=1.0))
    store.save_worker(Worker(name="w1", host="h", labels=("linux",), running=(2, 5)))
    store.save_worker(Worker(name="w0", state="offline", heartbeat_at=3.5))
    return store


def test_copy_to_sqlite_carries_everything(sqlite_path: Path) -> None:
    src, dst = _source(), SQLiteStore(sqlite_path)
    seen: list[tuple[int, int]] = []
    report = copy_store(src, dst, progress=lambda n, total: seen.append((n, total)))
    assert store_digest(src) == store_digest(dst)
    assert (12, 0) == (report.copied_builds, report.resumed_after)
    assert {
        "builds": 12,
        "steps": 24,
        "tests": 48,
        "artifacts": 12,
        "events": 13,
        "workers": 2,
    } == {
        k: report.counts[k] for k in ("builds", "steps", "tests", "artifacts", "events", "workers")
    }
    # The fields of distributed runs arrive too (the digest compares them as well).
    assert [(b.attempt, b.runs_on, b.heartbeat_at) for b in src.list_builds()] == [
        (b.attempt, b.runs_on, b.heartbeat_at) for b in dst.list_builds()
    ]
    assert src.list_workers() == dst.list_workers()
    assert (12, 12) == seen[-1]
    dst.close()


class FailAfter(MemoryStore):
    """A MemoryStore whose n-th append_log call raises StoreError."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n

    def append_log(self, build_id: int, step: str, data: bytes) -> int:
        self.n -= 1
        if self.n == 0:
            raise StoreError("interrupted")
        return super().append_log(build_id, step, data)


@pytest.mark.parametrize("fail_at", [1, 2, 5, 16, 24])
def test_an_interrupted_copy_is_finished_by_a_merge(fail_at: int) -> None:
    src, dst = _source(), FailAfter(fail_at)
    with pytest.raises(StoreError, match="interrupted"):
        copy_store(src, dst)
    with pytest.raises(ConfigError, match="--merge"):
        copy_store(src, dst)
    report = copy_store(src, dst, merge=True)
    assert report.resumed_after > 0
    assert store_digest(src) == store_digest(dst)


def test_a_destination_with_builds_is_refused_and_left_as_it_was() -> None:
    dst = MemoryStore()
    dst.create_build(BuildRequest(repo="r"))
    before = store_digest(dst)
    with pytest.raises(ConfigError, match="holds 1 builds"):  # the user's to choose: exit code 2
        copy_store(_source(), dst)
    assert before == store_digest(dst)


def test_merging_twice_is_merging_once_and_keeps_the_other_history() -> None:
    src, dst = _source(4), MemoryStore()
    own = dst.create_build(BuildRequest(repo="mine", params={"i": "0"}))
    dst.save_step(StepRun(build_id=own.id, name="build", position=0))
    dst.append_log(own.id, "build", b"my own log")
    dst.add_event(Event(kind="build_queued", at=0.5, build_id=own.id))
    first = copy_store(src, dst, merge=True)
    after_first = store_digest(dst)
    second = copy_store(src, dst, merge=True)
    assert (4, 0) == (first.copied_builds, first.resumed_after)
    assert (0, 4) == (second.copied_builds, second.resumed_after)
    assert after_first == store_digest(dst)
    assert 5 == len(dst.list_builds())
    assert b"my own log" == dst.read_log(own.id, "build")
    assert store_digest(src)[0]["events"] + 1 == after_first[0]["events"]


def test_a_merge_completes_a_build_that_went_on_in_the_source() -> None:
    src, dst = MemoryStore(), MemoryStore()
    b = src.create_build(BuildRequest(repo="r"))
    src.save_step(StepRun(build_id=b.id, name="test", position=0, status="running"))
    src.append_log(b.id, "test", b"first half ")
    copy_store(src, dst)
    src.append_log(b.id, "test", b"second half")
    src.save_step(StepRun(build_id=b.id, name="test", position=0, status="passed"))
    src.update_build(b.id, status="passed", sha="abc", finished_at=3.0)
    report = copy_store(src, dst, merge=True)
    assert (0, 1) == (report.copied_builds, report.resumed_after)
    (copied,) = dst.list_builds()
    assert ("passed", "abc") == (copied.status.value, copied.sha)
    assert b"first half second half" == dst.read_log(copied.id, "test")


def test_a_copy_that_lost_data_fails_verification() -> None:
    class DropsArtifacts(MemoryStore):
        def add_artifacts(self, *args: Any) -> None:
            pass

    with pytest.raises(StoreError, match="verification failed for artifacts"):
        copy_store(_source(), DropsArtifacts())


def test_a_copy_that_lost_a_worker_fails_verification() -> None:
    class DropsWorkers(MemoryStore):
        def save_worker(self, worker: Worker) -> Worker:
            return worker

    with pytest.raises(StoreError, match="verification failed for workers"):
        copy_store(_source(), DropsWorkers())


def test_copy_between_the_other_back_ends(tmp_path: Path) -> None:
    # SQLite -> DuckDB -> memory: every hop keeps every byte.
    pytest.importorskip("duckdb")
    from sauci.storage.duckdb import DuckDBStore

    src = _source(5)
    first = SQLiteStore(tmp_path / "a.db")
    copy_store(src, first)
    second = DuckDBStore(tmp_path / "b.duckdb")
    copy_store(first, second)
    third = MemoryStore()
    copy_store(second, third)
    assert store_digest(src) == store_digest(third)
    first.close()
    second.close()


def test_logs_kept_in_files_travel_with_their_build(tmp_path: Path) -> None:
    """A SQLite store that keeps a step's log as a range of the sink's file
    (log_files): the copy carries the bytes themselves, so the destination
    needs neither the file nor the source's data directory."""
    src = SQLiteStore(tmp_path / "src.db")
    build = src.create_build(BuildRequest(repo="r"))
    src.save_step(StepRun(build_id=build.id, name="test", position=0))
    log_file = tmp_path / "test.log"
    log_file.write_bytes(b"prefix that is not the step's" + b"step output \xff\n" * 1000)
    assert src.record_log_file(build.id, "test", str(log_file), start=29, size=14000)
    dst = MemoryStore()
    copy_store(src, dst)
    log_file.unlink()  # the source's files gone: the copy keeps its bytes
    (copied,) = dst.list_builds()
    assert b"step output \xff\n" * 1000 == dst.read_log(copied.id, "test")
    with pytest.raises(StoreError, match=r"test\.log"):  # never a silently empty copy
        copy_store(src, MemoryStore())
    src.close()
