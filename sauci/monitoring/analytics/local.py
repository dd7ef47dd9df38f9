"""The local sink: analytics events recorded in SauCI's own store.

Each event becomes an :class:`~sauci.core.models.Event` of kind
``analytics`` with no build id (so it never shows in a build's audit list),
the hashed id as actor and the event's name and properties as data. The UI's
usage page reads them back with :func:`read_events`; nothing leaves the
machine.
"""

from __future__ import annotations

from typing import Any

from sauci.core.models import Event
from sauci.monitoring.analytics._base import AnalyticsEvent, BatchSender

__all__ = ["KIND", "LocalSink", "read_events"]

KIND = "analytics"


class LocalSink:
    """Records events with ``store.add_event``, off the caller's thread."""

    name = "local"

    def __init__(self, store: Any, **sender: Any) -> None:
        self.store = store
        self.sender = BatchSender(self._deliver, name=self.name, **sender)

    def _deliver(self, batch: list[AnalyticsEvent]) -> None:
        for event in batch:
            self.store.add_event(
                Event(
                    kind=KIND,
                    at=event.at,
                    actor=event.distinct_id,
                    data={**event.properties, "event": event.name},
                )
            )

    def send(self, event: AnalyticsEvent) -> None:
        self.sender.put(event)

    def close(self, timeout: float = 0.2) -> None:
        self.sender.close(timeout)


def read_events(store: Any, *, limit: int = 5000) -> list[AnalyticsEvent]:
    """The newest ``limit`` store events, keeping the analytics ones, oldest first."""
    out = []
    for event in store.list_events(limit=limit):
        if event.kind != KIND or event.build_id is not None:
            continue
        data = dict(event.data)
        name = str(data.pop("event", ""))
        out.append(AnalyticsEvent(name=name, at=event.at, distinct_id=event.actor, properties=data))
    out.reverse()
    return out
