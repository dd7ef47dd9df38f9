"""The materialized view of a StreamStore: applying the stream's events, in
order, to a view store (a MemoryStore unless given another), following the
stream in a thread, measuring the lag and rebuilding the view from scratch.

A mixin of :class:`sauci.storage.stream.StreamStore`, which owns the
attributes it declares; kept apart so that module stays readable.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sauci._logging import get_logger
from sauci.core.models import BuildRequest, Status, StepRun
from sauci.core.records import Artifact, Event, Repo, TestCase
from sauci.exceptions import StoreError
from sauci.storage._fields import worker_from_dict
from sauci.typing import Store

__all__ = ["StreamView", "ViewFactory"]

# The name of the module this code came from, so that log events keep their logger.
log = get_logger("sauci.storage.stream")

ViewFactory = Callable[[Callable[[], float]], Store]


def _memory_view(clock: Callable[[], float]) -> Store:
    from sauci.storage.memory import MemoryStore

    return MemoryStore(clock=clock)


class StreamView:
    """Turns the event log into the view that every read comes from (part of
    StreamStore)."""

    _log: Any
    url: str
    stream: str
    view: Store
    _make_view: ViewFactory
    _now: float
    _applied: Any
    _applied_count: int
    _lock: threading.RLock
    _stop: threading.Event

    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        try:
            yield
        except StoreError:
            raise
        except self._log.errors as exc:
            raise StoreError(f"{what}: stream {self.stream} at {self.url}: {exc}") from exc

    # the stream and the view

    def _apply(self, payload: dict[str, Any], data: bytes) -> Any:
        v, op = self.view, payload.pop("op")
        self._now = payload.pop("now")
        if op == "create_build":
            return v.create_build(BuildRequest(**payload["request"]), status=payload["status"])
        if op == "update_build":
            return v.update_build(payload["id"], **payload["changes"])
        if op == "claim_build":
            return v.claim_build(payload["worker"], build_id=payload.get("id"))
        if op == "heartbeat_build":
            return v.heartbeat_build(payload["id"], payload["worker"])
        if op == "finish_build":
            return v.finish_build(
                payload["id"],
                payload["worker"],
                status=Status(payload["status"]),
                reason=payload["reason"],
                finished_at=payload["finished_at"],
            )
        if op == "save_worker":
            return v.save_worker(worker_from_dict(payload["worker"]))
        if op == "delete_worker":
            return v.delete_worker(payload["name"])
        if op == "save_repo":
            return v.save_repo(Repo(**payload["repo"]))
        if op == "delete_repo":
            return v.delete_repo(payload["id"])
        if op == "record_delivery":
            return v.record_delivery(payload["id"])
        if op == "save_step":
            return v.save_step(StepRun(**payload["step"]))
        if op == "append_log":
            return v.append_log(payload["id"], payload["step"], data)
        if op == "add_test_results":
            cases = [TestCase(**c) for c in payload["rows"]]
            return v.add_test_results(payload["id"], payload["step"], cases)
        if op == "add_artifacts":
            items = [Artifact(**a) for a in payload["rows"]]
            return v.add_artifacts(payload["id"], payload["step"], items)
        if op == "add_event":
            return v.add_event(Event(**payload["event"]))
        raise StoreError(f"unknown event {op!r} in stream {self.stream}")

    def _catch_up(self, until: Any = None) -> Any:
        outcome: Any = None
        while True:
            with self._errors("read the stream"):
                entries = self._log.read(self._applied, until)
            for entry_id, payload, data in entries:
                try:
                    result: Any = (True, self._apply(json.loads(payload), data))
                except Exception as exc:  # the writer gets it; every view skips it alike
                    result = (False, exc)
                self._applied = entry_id
                self._applied_count += 1
                if entry_id == until:
                    outcome = result
            if until is not None and outcome is not None:
                break
            if not entries:
                break
        return outcome

    def _follow(self) -> None:
        while not self._stop.is_set():
            try:
                with self._lock:
                    self._catch_up()
                # Wait for something new, without holding the lock.
                self._log.wait(self._applied, 0.5)
            except Exception as exc:
                if self._stop.is_set():
                    return
                log.warning("stream_follow_failed", stream=self.stream, error=str(exc))
                self._stop.wait(1.0)

    def catch_up(self) -> int:
        """Apply every event the view has not seen; returns how many."""
        with self._lock:
            before = self._applied_count
            self._catch_up()
            return self._applied_count - before

    def lag(self) -> dict[str, float]:
        """How far the view is behind the stream: ``entries`` not yet applied,
        and ``seconds`` since the oldest of them was appended (0 when none)."""
        with self._errors("measure the view lag"):
            entries = max(0, self._log.added() - self._applied_count)
            seconds = self._log.age(self._applied) if entries else 0.0
        return {"entries": entries, "seconds": seconds}

    def rebuild(self) -> int:
        """Replace the view by a new one built from the whole stream; returns
        the number of events applied."""
        with self._lock:
            old = self.view
            self.view = self._make_view(lambda: self._now)
            self._applied, self._applied_count = None, 0
            self._catch_up()
            old.close()
            return self._applied_count
