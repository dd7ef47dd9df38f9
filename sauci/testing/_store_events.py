"""Conformance tests of the EventStore part: the audit trail."""

from __future__ import annotations

from typing import ClassVar

from sauci.core.models import Event
from sauci.testing._store_support import MISSING_ID, StorePartConformance, build_request
from sauci.typing import EventStore, Store

__all__ = ["EventStoreConformance"]


class EventStoreConformance(StorePartConformance):
    """Events, newest first."""

    parts: ClassVar[tuple[type, ...]] = (EventStore,)

    def test_events_are_listed_newest_first(self, store: Store) -> None:
        build = store.create_build(build_request())
        events = [
            Event(kind="build_queued", at=10.0, build_id=build.id, actor="git"),
            Event(kind="server_started", at=11.0, data={"version": "1.0", "n": [1, 2]}),
            Event(kind="build_cancelled", at=12.5, build_id=build.id, actor="ada", data={"a": 1}),
        ]
        for e in events:
            store.add_event(e)
        assert events[::-1] == store.list_events()
        assert events[:0:-1] == store.list_events(limit=2)
        assert [] == store.list_events(limit=0)
        assert [events[2], events[0]] == store.list_events(build_id=build.id)
        assert [events[2]] == store.list_events(build_id=build.id, limit=1)
        assert [] == store.list_events(build_id=MISSING_ID)
