"""The analytics event, the sink contract, and the batching sender both sinks use.

A sink is handed events on whatever thread tracks them (a build's, a web
request's) and must return at once: :class:`BatchSender` puts each event on a
bounded queue and a daemon thread sends batches, retrying a failed batch a
bounded number of times before dropping it with one log line. A full queue
drops new events (one log line per overflow, not one per event). Nothing on
this path can block or fail a build.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

import attrs

from sauci._logging import get_logger

__all__ = ["AnalyticsEvent", "BatchSender", "Sink"]

log = get_logger(__name__)


def _props(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return dict(value or {})


@attrs.frozen(kw_only=True)
class AnalyticsEvent:
    """One usage event: a name, when, whose (a hashed id) and a few scalar properties."""

    name: str
    at: float
    distinct_id: str
    properties: Mapping[str, Any] = attrs.field(factory=dict, converter=_props)


@runtime_checkable
class Sink(Protocol):
    """Where analytics events go. ``send`` must return at once and never raise."""

    name: str

    def send(self, event: AnalyticsEvent) -> None:
        """Take one event (queue it; drop it when the queue is full)."""

    def close(self, timeout: float = 2.0) -> None:
        """Send what is queued, for at most ``timeout`` seconds; drop the rest."""


class BatchSender:
    """A bounded queue and a thread that hands batches to ``deliver``.

    ``deliver(batch)`` raises to say the batch was not taken; it is tried
    ``1 + retries`` times, ``backoff * 2**n`` seconds apart, then dropped.
    ``stats`` counts what happened, for tests and for the metrics page.
    """

    def __init__(
        self,
        deliver: Callable[[list[AnalyticsEvent]], None],
        *,
        name: str,
        batch_size: int = 50,
        flush_interval: float = 1.0,
        max_queue: int = 10_000,
        retries: int = 3,
        backoff: float = 0.5,
    ) -> None:
        self.name = name
        self._deliver = deliver
        self.batch_size = max(1, batch_size)
        self.flush_interval = flush_interval
        self.retries = max(0, retries)
        self.backoff = backoff
        self._queue: queue.Queue[AnalyticsEvent | None] = queue.Queue(maxsize=max(1, max_queue))
        self._closing = threading.Event()
        self._deadline: float | None = None
        self._overflowing = False
        self._lock = threading.Lock()
        self.stats = {"queued": 0, "sent": 0, "dropped": 0, "failures": 0, "batches": 0}
        self._thread = threading.Thread(
            target=self._run, name=f"sauci-analytics-{name}", daemon=True
        )
        self._thread.start()

    def _count(self, key: str, n: int = 1) -> None:
        with self._lock:
            self.stats[key] += n

    def put(self, event: AnalyticsEvent) -> None:
        if self._closing.is_set():
            self._count("dropped")
            return
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            self._count("dropped")
            if not self._overflowing:  # one line per overflow, not one per event
                self._overflowing = True
                log.warning(
                    "analytics_queue_full",
                    sink=self.name,
                    limit=self._queue.maxsize,
                    action="dropping new events until the queue drains",
                )
            return
        self._count("queued")

    def _take_batch(self) -> list[AnalyticsEvent]:
        """Wait for an event, then gather more for up to ``flush_interval`` s.

        ``None`` on the queue is close()'s wake-up call: it ends the gathering.
        """
        first = self._queue.get()
        if first is None:
            return []
        batch = [first]
        until = time.monotonic() + self.flush_interval
        while len(batch) < self.batch_size:
            remaining = 0.0 if self._closing.is_set() else until - time.monotonic()
            try:
                item = (
                    self._queue.get(timeout=remaining)
                    if remaining > 0
                    else self._queue.get_nowait()
                )
            except queue.Empty:
                break
            if item is None:
                break
            batch.append(item)
        return batch

    def _run(self) -> None:
        while True:
            if self._closing.is_set() and self._queue.empty():
                return
            if self._deadline is not None and time.monotonic() > self._deadline:
                self._drop_rest("closing: the time to send them ran out")
                return
            batch = self._take_batch()
            if not batch:
                continue
            if self._overflowing and self._queue.qsize() < self._queue.maxsize // 2:
                self._overflowing = False
            self._send(batch)

    def _send(self, batch: list[AnalyticsEvent]) -> None:
        error = ""
        for attempt in range(self.retries + 1):
            try:
                self._deliver(batch)
            except Exception as exc:  # any failure of the back end: retry, then drop
                self._count("failures")
                error = f"{type(exc).__name__}: {exc}"[:300]
                if attempt < self.retries:
                    wait = self.backoff * (2**attempt)
                    deadline = self._deadline
                    if deadline is None:
                        self._closing.wait(wait)  # close() cuts the wait short
                    else:
                        remaining = deadline - time.monotonic()
                        if remaining <= 0:
                            break
                        time.sleep(min(wait, remaining))
                continue
            self._count("sent", len(batch))
            self._count("batches")
            return
        self._count("dropped", len(batch))
        log.warning(
            "analytics_events_dropped",
            sink=self.name,
            events=len(batch),
            attempts=self.retries + 1,
            error=error,
        )

    def _drop_rest(self, why: str) -> None:
        dropped = 0
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            dropped += item is not None
        if dropped:
            self._count("dropped", dropped)
            log.warning("analytics_events_dropped", sink=self.name, events=dropped, error=why)

    def close(self, timeout: float = 2.0) -> None:
        """Send what is queued within ``timeout`` seconds, then stop (the rest is dropped)."""
        self._deadline = time.monotonic() + timeout
        self._closing.set()
        # Wake the thread if it waits for events; a full queue keeps it busy anyway.
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(None)
        self._thread.join(timeout + 0.5)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()
