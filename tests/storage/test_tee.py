"""TeeStore: the conformance suite, and secondaries that fail and catch up."""

from __future__ import annotations

from collections.abc import Iterator
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
from sauci.exceptions import StoreError
from sauci.storage import open_store
from sauci.storage.copy import store_digest
from sauci.storage.memory import MemoryStore
from sauci.storage.tee import TeeStore
from sauci.testing import StoreConformance


class TestTeeStore(StoreConformance):
    @pytest.fixture
    def store(self) -> Iterator[TeeStore]:
        s = TeeStore(MemoryStore(), [MemoryStore()])
        yield s
        s.close()


class Flaky(MemoryStore):
    """A MemoryStore whose every public call raises StoreError while ``down`` is set."""

    down = False


def _flaky(method: Any) -> Any:
    def call(self: Flaky, *args: Any, **kw: Any) -> Any:
        if self.down:
            raise StoreError("secondary is down")
        return method(self, *args, **kw)

    return call


for _name in dir(MemoryStore):
    if not _name.startswith("_") and _name not in ("close", "from_url", "capabilities"):
        setattr(Flaky, _name, _flaky(getattr(MemoryStore, _name)))


def _workload(store: Any) -> None:
    a = store.create_build(BuildRequest(repo="r", priority=1))
    b = store.create_build(BuildRequest(repo="r", reuse_from=a.id))
    store.claim_build("w1")
    store.save_step(StepRun(build_id=a.id, name="test", position=1))
    store.append_log(a.id, "test", b"hello ")
    store.append_log(a.id, "test", b"world")
    store.add_test_results(a.id, "test", [TestCase(name="t", duration=0.5)])
    store.add_artifacts(b.id, "test", [Artifact(path="x", size=3)])
    store.update_build(a.id, status="passed", finished_at=2e9)
    store.add_event(Event(kind="build_queued", at=1.0, build_id=b.id))
    store.save_repo(Repo(id="app", location="/srv/app"))
    store.record_delivery("gh-1")


def test_a_failing_secondary_does_not_fail_writes_and_catches_up_later() -> None:
    primary, flaky = MemoryStore(), Flaky()
    tee = TeeStore(primary, [flaky])
    tee.create_build(BuildRequest(repo="r"))  # arrives at once
    flaky.down = True
    _workload(tee)  # every write succeeds for the caller
    assert [12] == tee.backlog()
    assert not tee.catch_up()
    flaky.down = False
    assert tee.catch_up()
    assert [0] == tee.backlog()
    assert store_digest(primary) == store_digest(flaky)


def test_a_secondary_with_other_ids_gets_the_writes_of_the_right_builds() -> None:
    secondary = MemoryStore()
    secondary.create_build(BuildRequest(repo="old"))  # shifts its ids by one
    tee = TeeStore(MemoryStore(), [secondary])
    _workload(tee)
    assert [b"hello world", b""] == [secondary.read_log(i, "test") for i in (2, 1)]
    assert [2] == [e.build_id - 1 for e in secondary.list_events()]


def test_tee_url_opens_every_store(tmp_path: Path) -> None:
    tee = open_store(f"tee:memory://;sqlite:///{tmp_path / 'a.db'}")
    assert isinstance(tee, TeeStore)
    _workload(tee)
    assert store_digest(tee.primary) == store_digest(tee.secondaries[0])
    tee.close()


def test_compare_and_set_results_come_from_the_primary() -> None:
    now = [100.0]
    primary, secondary = MemoryStore(clock=lambda: now[0]), MemoryStore(clock=lambda: 1.0)
    tee = TeeStore(primary, [secondary])
    build = tee.create_build(BuildRequest(repo="r"))
    # The secondary disagrees (say, it was written to directly): the primary decides.
    secondary.update_build(build.id, status=Status.PASSED)
    now[0] = 105.0
    claimed = tee.claim_build("w", build_id=build.id)
    assert claimed is not None
    assert claimed == primary.get_build(build.id) == secondary.get_build(build.id)
    now[0] = 110.0
    assert tee.heartbeat_build(build.id, "w") is True
    assert 110.0 == primary.get_build(build.id).heartbeat_at
    assert 110.0 == secondary.get_build(build.id).heartbeat_at  # the primary's time
    assert tee.heartbeat_build(build.id, "other") is False
    assert (
        tee.finish_build(build.id, "other", status=Status.ERRORED, reason="x", finished_at=1.0)
        is None
    )
    assert primary.get_build(build.id) == secondary.get_build(build.id)  # nothing was sent
    done = tee.finish_build(build.id, "w", status=Status.FAILED, reason="no", finished_at=120.0)
    assert done is not None
    assert done == primary.get_build(build.id) == secondary.get_build(build.id)
    assert [0] == tee.backlog()


def test_workers_go_to_every_store_and_are_read_from_the_primary() -> None:
    primary, secondary = MemoryStore(), MemoryStore()
    tee = TeeStore(primary, [secondary])
    a, b = Worker(name="a", labels=("linux",)), Worker(name="b", running=(1,))
    tee.save_worker(b)
    tee.save_worker(a)
    tee.delete_worker("b")
    secondary.save_worker(b)  # only in the secondary: never read
    assert [a] == tee.list_workers() == primary.list_workers()
    assert [a, b] == secondary.list_workers()
