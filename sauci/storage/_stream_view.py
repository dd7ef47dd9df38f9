"""The materialized view of a StreamStore: applying the stream's events, in
order, to a view store (a MemoryStore unless given another), following the
stream in a thread, measuring the lag and rebuilding the view from scratch.

Every event carries an id (``eid``); the view applies an id once, so an
event appended twice (a write retried after an unknown outcome, which the
store sends again with the same id, or a broker that redelivers) makes one
build, one log chunk. Pieces of a large event (``_stream_pieces``) are
gathered until the event is whole.

A hole in the log (entries the broker lost or trimmed before this view read
them) is never skipped silently: the read fails with a StoreError that names
the stream, the missing entries and the command that rebuilds the views from
what remains (``sauci store rebuild``), which records that the hole is known
(a ``gap_accepted`` event), so views started afterwards read past it.

A mixin of :class:`sauci.storage.stream.StreamStore`, which owns the
attributes it declares; kept apart so that module stays readable.
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sauci._logging import get_logger
from sauci.core.models import BuildRequest, Status, StepRun
from sauci.core.records import Artifact, Event, Repo, TestCase
from sauci.exceptions import StoreError
from sauci.storage._fields import worker_from_dict
from sauci.storage._stream_logs import LogGap
from sauci.storage._stream_pieces import Assembler
from sauci.typing import Store

__all__ = ["StreamView", "ViewFactory"]

# The name of the module this code came from, so that log events keep their logger.
log = get_logger("sauci.storage.stream")

ViewFactory = Callable[[Callable[[], float]], Store]

WAITING = object()  # an event this process wrote, not applied yet
_CHECK_EVERY = 1.0  # seconds between the follower's checks for missing entries


def _text(position: Any) -> str:
    return position.decode() if isinstance(position, bytes) else str(position)


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
    _rebuild_hint: str
    accept_gaps: bool
    gaps: list[str]  # holes read past: accepted here or by an earlier rebuild
    _accepted: Any  # the last position of the holes accepted so far
    _applied_ids: set[str]
    _mine: OrderedDict[str, Any]  # outcomes of this process's events, by id
    _pieces: Assembler

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
        if op == "gap_accepted":
            self._accept(self._log.position(payload["through"]))
            return None
        raise StoreError(f"unknown event {op!r} in stream {self.stream}")

    def _reset(self) -> None:
        self._applied, self._applied_count = None, 0
        self._accepted, self.gaps = None, []
        self._applied_ids, self._pieces = set(), Assembler()

    def _accept(self, through: Any) -> None:
        if self._log.later(through, self._accepted):
            self._accepted = through

    def _gap(self, missing: str, through: Any) -> StoreError:
        if through is None:
            way = (
                "restart every process that uses this store (each rebuilds its view from "
                f"what remains; `{self._rebuild_hint}` shows what that is)"
            )
        else:
            way = f"rebuild the views from what remains with `{self._rebuild_hint}`"
        return StoreError(
            f"stream {self.stream} at {self.url} lost {missing}: the broker no longer has "
            f"events this view needs, so it stops rather than skip them; {way}"
        )

    def _acknowledged(self, through: Any) -> bool:
        """Whether a ``gap_accepted`` record later in the log covers the hole
        ending at ``through`` (read ahead, only when a hole is found)."""
        position = through
        while True:
            try:
                with self._errors("read the stream"):
                    entries = self._log.read(position, None, through)
            except LogGap:  # another hole after it: a rebuild deals with both
                return False
            for entry_id, payload, _ in entries:
                if b'"gap_accepted"' in payload:
                    mark = json.loads(payload)
                    if mark.get("op") == "gap_accepted":
                        self._accept(self._log.position(mark["through"]))
                position = entry_id
            if not entries or not self._log.later(through, self._accepted):
                return not self._log.later(through, self._accepted)

    def _read(
        self, until: Any, check: bool, afresh: bool = False
    ) -> list[tuple[Any, bytes, bytes]]:
        while True:
            try:
                with self._errors("read the stream"):
                    entries = self._log.read(
                        self._applied, until, self._accepted, self._applied_count, check
                    )
                    if not entries and afresh:  # past the end the log's counts tell
                        entries = self._log.read_on(self._applied, self._accepted)
                    return entries  # type: ignore[no-any-return]
            except LogGap as gap:
                known = gap.through is not None and (
                    self.accept_gaps or self._acknowledged(gap.through)
                )
                if not known:
                    raise self._gap(gap.missing, gap.through) from None
                log.warning("stream_gap_read_past", stream=self.stream, missing=gap.missing)
                self.gaps.append(gap.missing)
                self._accept(gap.through)

    def _one(self, payload: bytes, data: bytes) -> None:
        head = json.loads(payload)
        if head.get("op") == "piece":
            whole = self._pieces.add(head, data)
            if whole is None:
                return
            head, data = json.loads(whole[0]), whole[1]
        eid = head.get("eid")
        if eid is not None:
            if eid in self._applied_ids:
                return  # appended twice: applied once
            self._applied_ids.add(eid)
        try:
            result: Any = (True, self._apply(head, data))
        except Exception as exc:  # the writer gets it; every view skips it alike
            result = (False, exc)
        if eid is not None and eid in self._mine:
            self._mine[eid] = result

    def _catch_up(self, until: Any = None, *, check: bool = True, afresh: bool = False) -> None:
        """Apply the entries after the view's position (up to ``until``, a
        writer's own entry); ``check``: ask the log whether entries are
        missing (a writer's read does not; the follower once a second);
        ``afresh``: at the end, ask the broker for more (``read_on``)."""
        reached = until is None
        while True:
            entries = self._read(until, check, afresh)
            check = False  # the first read tells of every hole after the position
            for entry_id, payload, data in entries:
                self._one(payload, data)
                self._applied = entry_id
                self._applied_count += 1
                reached = reached or entry_id == until
            if not entries or (until is not None and reached):
                break
        if not reached and self._log.later(until, self._applied):  # not read back (yet)
            raise StoreError(
                f"stream {self.stream} at {self.url}: event {_text(until)} was appended "
                "but not read back in time; the write may have been stored"
            )
        if not reached:  # appended, yet behind what this view applied: the log went back
            raise self._gap(
                f"the entries before {_text(until)}: the log ends before what this view "
                f"applied ({_text(self._applied)})",
                None,
            )

    def _follow(self) -> None:
        checked = 0.0
        while not self._stop.is_set():
            try:
                with self._lock:
                    check = time.monotonic() - checked >= _CHECK_EVERY
                    self._catch_up(check=check)
                    checked = time.monotonic() if check else checked
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
            self._catch_up(afresh=True)
            return self._applied_count - before

    @property
    def applied_entries(self) -> int:
        """Entries of the log this view has read (an event's pieces count each)."""
        return self._applied_count

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
            self._reset()
            self._catch_up(afresh=True)
            old.close()
            return self._applied_count
