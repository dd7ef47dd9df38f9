"""Events a remote sink could not send before its process ended, kept for the next one.

A command must never wait for an analytics endpoint, so at exit whatever is
unsent is appended to a small file in the data directory (JSON lines, mode
0600, at most ``max_bytes``) instead of being sent or dropped. The next
process with the same sink claims the file (an atomic rename, so two
processes never both send it) and sends its events first. Events carry a
``$insert_id``, so an event that was both spooled and, late, sent by a thread
still in flight at exit is counted once by Mixpanel.

A failed delivery also writes a marker (``<file>.unreachable``): for
``retry_after`` seconds after it, processes spool at once instead of trying
the endpoint again, so an unreachable endpoint costs a command nothing.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Iterable
from pathlib import Path

from sauci.monitoring.analytics._event import AnalyticsEvent

__all__ = ["Spool"]

CLAIMED = ".sending-"


class Spool:
    """The pending-events file of one sink (one endpoint and token)."""

    def __init__(self, path: Path, *, max_bytes: int = 256 * 1024, retry_after: float = 300.0):
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.retry_after = retry_after
        self._marker = self.path.with_name(self.path.name + ".unreachable")
        self._lock = threading.Lock()

    # -- writing -------------------------------------------------------------------------

    def append(self, events: Iterable[AnalyticsEvent]) -> tuple[int, int]:
        """Keep ``events`` for the next process: (kept, dropped because the file is full)."""
        lines = [_encode(e) for e in events]
        if not lines:
            return 0, 0
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                size = self.path.stat().st_size
            except FileNotFoundError:
                size = 0
            kept: list[bytes] = []
            for line in lines:
                if size + len(line) > self.max_bytes:
                    break
                kept.append(line)
                size += len(line)
            if kept:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
                try:
                    os.write(fd, b"".join(kept))  # one write: lines never interleave
                finally:
                    os.close(fd)
        return len(kept), len(lines) - len(kept)

    # The marker only saves tries: a marker that cannot be written or removed
    # must not stop the sender's thread.
    def mark_unreachable(self) -> None:
        with contextlib.suppress(OSError):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._marker.write_text(f"{time.time():.3f}\n")

    def mark_reachable(self) -> None:
        with contextlib.suppress(OSError):
            self._marker.unlink(missing_ok=True)

    def unreachable(self, now: float | None = None) -> bool:
        """Whether a delivery failed less than ``retry_after`` seconds ago (in any process)."""
        return (time.time() if now is None else now) < self.retry_at()

    def retry_at(self) -> float:
        """When (``time.time()``) the endpoint may be tried again: 0.0 unless marked down."""
        try:
            failed_at = float(self._marker.read_text().strip() or 0)
        except (OSError, ValueError):  # none, unreadable or not ours: try the endpoint
            return 0.0
        return failed_at + self.retry_after if failed_at else 0.0

    # -- reading -------------------------------------------------------------------------

    def claim(self) -> list[AnalyticsEvent]:
        """Take the pending events (and those of processes that died while sending
        them); the caller sends them or appends them again."""
        mine = self.path.with_name(f"{self.path.name}{CLAIMED}{os.getpid()}")
        found: list[Path] = []
        try:
            os.rename(self.path, mine)
            found.append(mine)
        except FileNotFoundError:
            pass
        stale_files = sorted(self.path.parent.glob(self.path.name + CLAIMED + "*"))
        for n, stale in enumerate(stale_files):
            # <file>.sending-<pid>[.<n>]: the pid is the process sending it.
            if stale != mine and not _alive(stale.name.rpartition("-")[2]):
                taken = mine.with_name(f"{mine.name}.{n}")
                try:
                    os.rename(stale, taken)
                except FileNotFoundError:  # another process took it
                    continue
                found.append(taken)
        events: list[AnalyticsEvent] = []
        for path in found:
            events.extend(_decode(path.read_bytes()))
            path.unlink(missing_ok=True)
        return events


def _alive(pid_text: str) -> bool:
    try:
        os.kill(int(pid_text.partition(".")[0]), 0)
    except ValueError:
        return False
    except ProcessLookupError:
        return False
    except PermissionError:  # somebody else's live process
        return True
    return True


def _encode(event: AnalyticsEvent) -> bytes:
    record = {
        "name": event.name,
        "at": event.at,
        "distinct_id": event.distinct_id,
        "insert_id": event.insert_id,
        "properties": dict(event.properties),
    }
    return json.dumps(record, separators=(",", ":")).encode() + b"\n"


def _decode(data: bytes) -> list[AnalyticsEvent]:
    """The events of a spool file; a line cut by a crash or not SauCI's is skipped."""
    out = []
    for line in data.splitlines():
        try:
            record = json.loads(line)
            out.append(
                AnalyticsEvent(
                    name=str(record["name"]),
                    at=float(record["at"]),
                    distinct_id=str(record["distinct_id"]),
                    insert_id=str(record["insert_id"]),
                    properties={
                        str(k): v
                        for k, v in dict(record["properties"]).items()
                        if v is None or isinstance(v, str | int | float | bool)
                    },
                )
            )
        except (ValueError, KeyError, TypeError):
            continue
    return out
