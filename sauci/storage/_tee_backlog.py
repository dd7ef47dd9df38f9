"""The writes a TeeStore owes one secondary store, replayed in order, with a
back-off after a failure (a dead server may take a socket timeout per attempt).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import attrs

from sauci._logging import get_logger
from sauci.exceptions import NotFoundError
from sauci.typing import Store

__all__ = [
    "Backlog",
    "IdMap",
    "Write",
    "kept",
    "log_appended",
    "logs_completed",
    "mapped",
    "replayed",
]

log = get_logger(__name__)

# A write replayed on a secondary: called with (secondary, id map). A build the
# map does not know (made by another process's tee, or before the tee) is
# found on the secondary by its UUID; one the secondary lacks maps to None.
Write = Callable[[Store, dict[int, int]], object]


class IdMap(dict[int, int]):
    """Primary build id -> the secondary's. Another process's tee made the
    builds it did not see created (a restarted server ending them), and the
    two stores need not number them alike (a create replayed from a
    backlog comes after another process's), so an unknown id is looked up
    by the build's UUID, never taken as it is."""

    def __init__(self, primary: Store, secondary: Store) -> None:
        super().__init__()
        self._primary = primary
        self._secondary = secondary

    def get(self, key: int, default: Any = None) -> Any:  # type: ignore[override]
        if key in self:
            return self[key]
        found = self._find(key)
        if found is None:
            log.warning("tee_secondary_lacks_build", build=key)
            return None
        self[key] = found
        return found

    def _find(self, key: int) -> int | None:
        try:
            build = self._primary.get_build(key)
        except NotFoundError:
            return None
        if not build.uuid:
            return None
        before: int | None = None
        while True:
            page = self._secondary.list_builds(repo=build.repo, before_id=before, limit=200)
            for other in page:
                if other.uuid == build.uuid:
                    return other.id
            if len(page) < 200:
                return None
            before = page[-1].id


def kept(value: Any) -> Any:
    """A copy of what the caller may reuse once the call returns (a buffer, a list)."""
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    return list(value) if isinstance(value, list) else value


def mapped(name: str, value: Any, ids: dict[int, int]) -> Any:
    """An argument of a write for a secondary: build ids as that store numbers them."""
    if name == "build_id" and value is not None:
        return ids.get(value, value)
    if attrs.has(type(value)) and getattr(value, "build_id", None) is not None:
        return attrs.evolve(value, build_id=ids.get(value.build_id, value.build_id))
    return value


def _build_id(name: str, value: Any) -> Any:
    if name == "build_id":
        return value
    return getattr(value, "build_id", None) if attrs.has(type(value)) else None


def replayed(name: str, given: dict[str, Any]) -> Write:
    """The write ``name(**given)`` for a secondary, its build ids mapped; a
    no-op when the secondary lacks the build (`store copy --merge` completes
    it), never a write to another build."""

    def write(s: Store, ids: dict[int, int]) -> None:
        args = {k: mapped(k, v, ids) for k, v in given.items()}
        if not any(
            _build_id(k, v) is not None and _build_id(k, args[k]) is None for k, v in given.items()
        ):
            getattr(s, name)(**args)

    return write


def log_appended(primary: Store, given: dict[str, Any], size: int) -> Write:
    """``append_log`` for a secondary, made idempotent by sizes: the step's
    log there is brought to the primary's first ``size`` bytes (the total
    after this chunk). An append whose answer was lost (the server went
    down after taking it) is not doubled when replayed, and a gap (a killed
    process's backlog) is filled from the primary."""
    build_id, step, data = given["build_id"], given["step"], given["data"]

    def write(s: Store, ids: dict[int, int]) -> None:
        sid = ids.get(build_id)
        if sid is None:
            return
        have = s.log_size(sid, step)
        if have == size - len(data):
            s.append_log(sid, step, data)
        elif have < size:
            s.append_log(sid, step, primary.read_log(build_id, step, have, size - have))

    return write


def logs_completed(primary: Store, build_id: int) -> Write:
    """At a build's end, the tail of each of its step logs that the secondary
    lacks, read from the primary: a process killed between its append to
    the primary and to the secondary (its backlog gone with it) left it
    out, and nothing would send it again."""

    def write(s: Store, ids: dict[int, int]) -> None:
        sid = ids.get(build_id)
        if sid is None:
            return
        for step in primary.list_steps(build_id):
            have, size = s.log_size(sid, step.name), primary.log_size(build_id, step.name)
            if have < size:
                s.append_log(sid, step.name, primary.read_log(build_id, step.name, have))

    return write


class Backlog:
    """One secondary store, its build id map and the writes not yet replayed."""

    def __init__(self, store: Store, primary: Store) -> None:
        self.store = store
        self.ids: dict[int, int] = IdMap(primary, store)  # primary build id -> this store's
        self.writes: deque[tuple[str, Write]] = deque()
        self.lock = threading.Lock()
        # After a failure, writes only queue until retry_at: 1 s, doubling up to 60 s.
        self.retry_at = 0.0
        self.pause = 0.0

    def catch_up(self) -> bool:
        with self.lock:
            return self.drain()

    def close(self) -> None:
        """Close the store; writes not yet replayed are logged and dropped."""
        if self.writes:
            name = type(self.store).__name__
            log.warning("tee_backlog_dropped", store=name, writes=len(self.writes))
        self.store.close()

    def send(self, what: str, write: Write) -> None:
        with self.lock:
            self.writes.append((what, write))
            if time.monotonic() >= self.retry_at:
                self.drain()

    def drain(self) -> bool:
        """Replay the writes in order; False when one failed (it stays first)."""
        while self.writes:
            what, write = self.writes[0]
            try:
                write(self.store, self.ids)
            except Exception as exc:
                log.warning(
                    "tee_secondary_failed",
                    store=type(self.store).__name__,
                    write=what,
                    backlog=len(self.writes),
                    error=str(exc),
                )
                self.pause = min(60.0, max(1.0, self.pause * 2))
                self.retry_at = time.monotonic() + self.pause
                return False
            self.writes.popleft()
        self.pause = 0.0
        return True
