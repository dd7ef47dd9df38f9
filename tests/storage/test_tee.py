"""TeeStore: the conformance suite, and secondaries that fail and catch up."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sauci.core.models import Artifact, BuildRequest, Event, Repo, StepRun, TestCase
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
