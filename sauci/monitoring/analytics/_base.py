"""The analytics event, the sink contract, and the batching sender both sinks use.

A sink is handed events on whatever thread tracks them (a build's, a web
request's) and must return at once: :class:`BatchSender` puts each event on a
bounded queue and a daemon thread sends batches, retrying a failed batch a
bounded number of times. A full queue drops new events (one log line per
overflow, not one per event). Nothing on this path can block or fail a build.
The thread starts with the first event, and not while the spool's marker says
the endpoint is down: then the queue only holds the events until close.

At exit, ``close`` gives the thread a bounded time (0.2 s by default) and
never retries: what is still unsent then goes to the sender's spool (a small
file the next process sends, see ``_spool.py``) or, for a sender without one,
is dropped with its count in one log line. With the endpoint known to be
down (a marker the spool keeps), close spools at once without trying.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable
from typing import Protocol, runtime_checkable

from sauci._logging import get_logger
from sauci.monitoring.analytics._event import AnalyticsEvent
from sauci.monitoring.analytics._spool import Spool

__all__ = ["AnalyticsEvent", "BatchSender", "Sink"]

log = get_logger(__name__)


@runtime_checkable
class Sink(Protocol):
    """Where analytics events go. ``send`` must return at once and never raise."""

    name: str

    def send(self, event: AnalyticsEvent) -> None:
        """Take one event (queue it; drop it when the queue is full)."""

    def close(self, timeout: float = 0.2) -> None:
        """Send what is queued, for at most ``timeout`` seconds; keep or drop the rest."""


class BatchSender:
    """A bounded queue and a thread that hands batches to ``deliver``.

    ``deliver(batch)`` raises to say the batch was not taken; it is tried
    ``1 + retries`` times, ``backoff * 2**n`` seconds apart (once only while
    closing). ``prepare()``, when given, runs first on the thread (a remote
    sink imports its HTTP client there), so that at exit the flush waits only
    for a request in flight, not for an import. A batch still not taken goes to ``spool`` when there is one,
    else it is dropped with one log line. ``stats`` counts what happened, for
    tests and for the metrics page.
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
        spool: Spool | None = None,
        prepare: Callable[[], object] | None = None,
    ) -> None:
        self.name = name
        self._deliver = deliver
        self._prepare = prepare
        self.batch_size = max(1, batch_size)
        self.flush_interval = flush_interval
        self.retries = max(0, retries)
        self.backoff = backoff
        self.spool = spool
        self._queue: queue.Queue[AnalyticsEvent | None] = queue.Queue(maxsize=max(1, max_queue))
        self._closing = threading.Event()
        self._deadline: float | None = None
        self._overflowing = False
        self._lock = threading.Lock()
        self._held: list[AnalyticsEvent] = []  # taken by the thread, not yet sent
        self._abandoned = False  # close() ran out of time and took what was held
        self.stats = {
            "queued": 0,
            "sent": 0,
            "dropped": 0,
            "failures": 0,
            "batches": 0,
            "spooled": 0,
        }
        # Started by the first put(), and not while the spool says the endpoint
        # is down: a process that tracks nothing, or only while the endpoint is
        # known down, starts no thread and imports no HTTP client.
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._stopped = False  # close() ran: no thread starts after it
        self._retry_at: float | None = None  # the spool's marker, read once

    def _count(self, key: str, n: int = 1) -> None:
        with self._lock:
            self.stats[key] += n

    def put(self, event: AnalyticsEvent) -> None:
        if self._closing.is_set():
            self._count("dropped")
            return
        if self._thread is None:
            self._start()
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

    def _start(self) -> None:
        """Start the thread, unless the endpoint is known down (then the queue
        holds the events: close() spools them, or a put after the marker's
        time is up starts the thread)."""
        with self._start_lock:
            if self._thread is not None or self._stopped:
                return
            if self.spool is not None:
                if self._retry_at is None:
                    self._retry_at = self.spool.retry_at()
                if time.time() < self._retry_at:
                    return
            thread = threading.Thread(target=self._run, name=f"sauci-analytics-{self.name}")
            thread.daemon = True
            thread.start()
            self._thread = thread

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

    def _hold(self, events: list[AnalyticsEvent]) -> bool:
        """Note what the thread is about to send; False once close() gave up on it."""
        with self._lock:
            if self._abandoned:
                return False
            self._held = list(events)
            return True

    def _run(self) -> None:
        if self._prepare is not None:
            try:
                self._prepare()
            except Exception:  # deliver() fails the same way, counted and kept there
                log.warning("analytics_prepare_failed", sink=self.name, exc_info=True)
        self._send_spooled()
        while True:
            if self._closing.is_set() and self._queue.empty():
                return
            if self._deadline is not None and time.monotonic() > self._deadline:
                return  # close() keeps what is left
            batch = self._take_batch()
            if not batch:
                continue
            if not self._hold(batch):
                self._keep(batch, "closing: the time to send them ran out")
                return
            if self._overflowing and self._queue.qsize() < self._queue.maxsize // 2:
                self._overflowing = False
            self._wait_while_down()
            self._send(batch)
            if not self._hold([]):
                return

    def _wait_while_down(self) -> None:
        """While the spool's marker says the endpoint is down (this process found it
        so, or another did), hold the batch rather than try it again; close() cuts
        the wait short and keeps the batch."""
        if self.spool is None:
            return
        retry_at = self.spool.retry_at()
        while not self._closing.is_set() and time.time() < retry_at:
            self._closing.wait(retry_at - time.time())

    def _send_spooled(self) -> None:
        """Send what earlier processes could not, first (unless the endpoint is known down)."""
        if self.spool is None or self.spool.unreachable():
            return
        try:
            pending = self.spool.claim()
        except OSError as exc:
            log.warning("analytics_spool_unreadable", sink=self.name, error=str(exc))
            return
        while pending:
            if not self._hold(pending):
                self._keep(pending, "closing: the time to send them ran out")
                return
            batch, pending = pending[: self.batch_size], pending[self.batch_size :]
            if not self._send(batch):
                self._hold([])
                self._keep(pending, "the endpoint did not take the batch before them")
                return
        self._hold([])

    def _send(self, batch: list[AnalyticsEvent]) -> bool:
        """Deliver ``batch``, retrying unless closing; keep or drop it when that fails."""
        error = ""
        attempts = 0
        for attempt in range(self.retries + 1):
            if self._closing.is_set() and (
                attempt > 0 or (self.spool is not None and self.spool.unreachable())
            ):
                error = error or "closing: the endpoint was unreachable a moment ago"
                break  # no retries at exit, and no try at all when known down
            attempts += 1
            try:
                self._deliver(batch)
            except Exception as exc:  # any failure of the back end: retry, then keep
                self._count("failures")
                error = f"{type(exc).__name__}: {exc}"[:300]
                if attempt < self.retries and not self._closing.is_set():
                    self._closing.wait(self.backoff * (2**attempt))  # close() cuts it short
                continue
            self._count("sent", len(batch))
            self._count("batches")
            if self.spool is not None:
                self.spool.mark_reachable()
            return True
        if self.spool is not None and attempts:
            self.spool.mark_unreachable()
        self._keep(batch, error, attempts=attempts)
        return False

    def _keep(self, events: list[AnalyticsEvent], why: str, *, attempts: int = 0) -> None:
        """Spool ``events`` for the next process, or drop them, with one log line."""
        if not events:
            return
        kept = 0
        if self.spool is not None:
            try:
                kept, _ = self.spool.append(events)
            except OSError as exc:
                why = f"{why}; spool: {exc}"
        if kept:
            self._count("spooled", kept)
            log.info("analytics_events_spooled", sink=self.name, events=kept, error=why)
        dropped = len(events) - kept
        if dropped:
            self._count("dropped", dropped)
            log.warning(
                "analytics_events_dropped",
                sink=self.name,
                events=dropped,
                attempts=attempts,
                error=why,
            )

    def close(self, timeout: float = 0.2) -> None:
        """Send what is queued within ``timeout`` seconds, then stop; the rest is
        spooled for the next process (or dropped, without a spool)."""
        self._deadline = time.monotonic() + timeout
        self._closing.set()
        with self._start_lock:
            self._stopped = True
            thread = self._thread
        if thread is None:  # nothing was tracked, or the endpoint is known down
            self._keep(self._drain([]), "not tried: the endpoint was unreachable a moment ago")
            return
        # Wake the thread if it waits for events; a full queue keeps it busy anyway.
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(None)
        thread.join(timeout)
        with self._lock:
            self._abandoned = True
            left = list(self._held) if thread.is_alive() else []
        if left and self.spool is not None:
            self.spool.mark_unreachable()  # it did not answer in time: do not wait for it again
        self._keep(self._drain(left), "closing: the time to send them ran out")

    def _drain(self, into: list[AnalyticsEvent]) -> list[AnalyticsEvent]:
        """``into`` with what is left on the queue appended."""
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return into
            if item is not None:
                into.append(item)

    @property
    def alive(self) -> bool:
        """Whether the sending thread is running (False before the first event)."""
        thread = self._thread
        return thread is not None and thread.is_alive()
