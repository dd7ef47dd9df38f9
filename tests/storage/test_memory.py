"""MemoryStore, the reference model: the conformance suite and its own rules."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sauci.core.models import BuildRequest, Event
from sauci.storage.memory import MemoryStore
from sauci.testing import StoreConformance


class TestMemoryStore(StoreConformance):
    @pytest.fixture
    def store(self) -> Iterator[MemoryStore]:
        s = MemoryStore()
        yield s
        s.close()


def test_capabilities() -> None:
    assert frozenset({"atomic_claim", "analytics"}) == MemoryStore.capabilities


def test_clock_gives_the_recorded_times() -> None:
    now = [100.0]
    store = MemoryStore(clock=lambda: now[0])
    build = store.create_build(BuildRequest(repo="r"))
    now[0] = 105.0
    claimed = store.claim_build("w")
    assert claimed is not None
    assert (100.0, 105.0) == (build.queued_at, claimed.started_at)


def test_values_are_stored_as_json_would_store_them() -> None:
    # The model must not accept what a durable store cannot keep.
    store = MemoryStore()
    store.add_event(Event(kind="k", at=1, data={"t": (1, 2)}))
    assert {"t": [1, 2]} == store.list_events()[0].data
    with pytest.raises(TypeError):
        store.add_event(Event(kind="k", at=1, data={"x": object()}))
    with pytest.raises(TypeError):
        store.create_build(BuildRequest(repo="r", params={"x": object()}))  # type: ignore[dict-item]


def test_returned_builds_do_not_share_state_with_the_store() -> None:
    store = MemoryStore()
    build = store.create_build(BuildRequest(repo="r", params={"a": "1"}))
    build.params["a"] = "changed"  # type: ignore[index]
    assert {"a": "1"} == store.get_build(build.id).params


def test_from_url() -> None:
    assert isinstance(MemoryStore.from_url("memory://"), MemoryStore)
