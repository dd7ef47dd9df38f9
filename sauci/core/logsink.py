"""LogSink: a step's output as bytes to a file on disk and in chunks to the store.

Bytes in, batches out: whole pieces are masked, capped and written with bytes
operations, never line by line, and the store gets one ``append_log`` call per
64 KiB or per 100 ms, never a row per line.

A store on this machine that has the ``log_files`` capability (the embedded
SQLite store) gets no bytes at all: the sink records that the step's log is
its file (``store.record_log_file``), and updates the recorded size every
100 ms and at the end, so the store serves the same bytes, live, from the
file. Every other store (PostgreSQL, Redis, a remote one) receives chunks.

Timestamps sidecar (``<log path>.ts``): the log bytes are kept exactly as the
step wrote them; when each piece arrived is recorded beside them as ASCII
lines ``"<offset> <epoch>\\n"``, where ``offset`` is the byte offset in the log
file where the piece starts and ``epoch`` is float seconds since the epoch
(UTC, millisecond precision), e.g. ``"65536 1767225600.123\\n"``. Offsets
increase; the time of the byte at offset ``o`` is that of the last line with
``offset <= o``. :func:`read_timestamps` reads the file.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

from sauci._logging import get_logger
from sauci.core.models import DEFAULT_LOG_LIMIT

__all__ = ["LogBudget", "LogFollower", "LogSink", "follow", "format_size", "read_timestamps"]

log = get_logger(__name__)

MASK = b"***"
MIN_SECRET_LENGTH = 3


def format_size(size: int) -> str:
    """``104857600`` -> ``"100 MiB"``, ``1536`` -> ``"1.5 KiB"``, ``10`` -> ``"10 bytes"``."""
    for unit, factor in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= factor:
            value = size / factor
            text = f"{value:.1f}".rstrip("0").rstrip(".")  # "3.0001" -> "3", not "3."
            return f"{text} {unit}"
    return f"{size} bytes"


class LogBudget:
    """The log bytes one build may keep, across all its steps and matrix entries.

    One budget is shared by the sinks of a build's steps (on their threads);
    each takes what it keeps before writing it, so the build's logs never
    exceed ``limit`` (beside the one-line notices that say where output was
    dropped), however many steps flood at once.
    """

    def __init__(self, limit: int) -> None:
        if limit < 0:
            raise ValueError(f"a log budget cannot be negative: {limit}")
        self.limit = limit
        self._left = limit
        self._lock = threading.Lock()

    def take(self, size: int) -> int:
        """Take up to ``size`` bytes; returns how many (fewer once it runs out)."""
        with self._lock:
            granted = size if size <= self._left else self._left
            self._left -= granted
        return granted

    @property
    def left(self) -> int:
        """Bytes the build may still keep."""
        return self._left

    @property
    def reason(self) -> str:
        """``"the build's logs exceeded 1 GiB"``: what a step cut by it says."""
        return f"the build's logs exceeded {format_size(self.limit)}"


class LogSink:
    """Writes one step's log: masked, capped, to disk as it comes and to the store in chunks.

    ``store`` (optional) gets ``store.append_log(build_id, step, chunk)``, or,
    when it has the ``log_files`` capability, ``store.record_log_file(...)``
    with the file's path and the log's size so far; a failing store never
    loses the disk log: the error is kept in ``store_error``, logged once, and
    nothing more is sent (the stored log stays a clean prefix of the file).
    ``on_data`` is called with every piece written to disk (after masking),
    for live viewers.

    With ``secrets``, each is replaced by ``***`` before anything is written
    or shown, also when it is split across writes (and across more than
    two: a secret longer than one read): an output end that may be the
    beginning of a secret is held back until the next write shows whether it
    is; at :meth:`close`, a held-back beginning of a secret (of at least
    MIN_SECRET_LENGTH bytes) is masked as well.

    ``limit`` caps this step's log; ``budget`` (a :class:`LogBudget`), when
    given, caps the whole build's. Whichever is hit first drops the rest of
    the output with a notice in the log; :attr:`budget_spent` tells which,
    and ``on_exceeded`` (optional) is called once, when it happens, so that
    the caller can end the step.
    """

    def __init__(
        self,
        path: Path | str,
        *,
        store: Any = None,
        build_id: int | None = None,
        step: str | None = None,
        limit: int = DEFAULT_LOG_LIMIT,
        secrets: Sequence[str | bytes] = (),
        chunk_size: int = 64 * 1024,
        flush_interval: float = 0.1,
        timestamps: bool = True,
        on_data: Callable[[bytes], None] | None = None,
        budget: LogBudget | None = None,
        on_exceeded: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = Path(path)
        self.store = store
        self.build_id = build_id
        self.step = step
        self.limit = limit
        self.chunk_size = chunk_size
        self.flush_interval = flush_interval
        self.on_data = on_data
        self.budget = budget
        self.on_exceeded = on_exceeded
        self.store_error: BaseException | None = None
        self._clock = clock
        self._lock = threading.Lock()  # a sink may be written by the sandbox and the executor
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd: int | None = os.open(
            self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644
        )
        self._offset = os.fstat(self._fd).st_size  # file offset of the next byte
        # The timestamps sidecar is made at the first write: a silent step
        # (a file creation costs ~0.25 ms here) has none, which readers take
        # as "no timestamps".
        self._timestamps = timestamps
        self._ts: TextIO | None = None
        self._kept = 0  # bytes of output kept (counts against ``limit``)
        self._written = 0  # bytes this sink wrote to the file, notice included
        self._exceeded = False
        self._budget_spent = False
        self._reason: str | None = None
        self._pending: list[bytes | memoryview] = []
        self._pending_len = 0
        self._last_send = self._last_ts_flush = time.monotonic()
        self._warned_on_data = False
        # The store can read the log from this file: send sizes, not bytes
        # (from the first flush with data on: a silent step costs no write).
        self._start = self._offset
        self._in_file = store is not None and "log_files" in getattr(store, "capabilities", ())
        values = {s.encode() if isinstance(s, str) else bytes(s) for s in secrets}
        values = {v for v in values if len(v) >= MIN_SECRET_LENGTH}
        self._secrets = sorted(values, key=len, reverse=True)
        # Longest first, so that of two secrets starting at the same byte the
        # longer is masked; the same rule as masking the whole log at once.
        alternatives = b"|".join(re.escape(v) for v in self._secrets)
        self._pattern = re.compile(alternatives) if self._secrets else None
        self._splitter = re.compile(b"(" + alternatives + b")") if self._secrets else None
        self._anchors = [s[: min(8, len(s) - 1)] for s in self._secrets]
        self._keep = len(self._secrets[0]) - 1 if self._secrets else 0
        self._held = b""

    # -- LogWriter ---------------------------------------------------------

    def write(self, data: bytes) -> None:
        """Take the next piece of output (any bytes; never raises for content)."""
        with self._lock:
            if self._fd is None:
                raise ValueError(f"write to closed LogSink {self.path}")
            if self._exceeded or not data:
                return
            if type(data) is not bytes:  # a caller's bytearray may change later
                data = bytes(data)
            self._emit(self._mask(data) if self._pattern is not None else [data])
            self._send_if_due(time.monotonic(), force=False)

    @property
    def exceeded(self) -> bool:
        """True once the size cap was hit; later output is dropped."""
        return self._exceeded

    # -- more --------------------------------------------------------------

    @property
    def bytes_written(self) -> int:
        """Bytes this sink wrote to the file (including the cap notice)."""
        return self._written

    @property
    def reason(self) -> str | None:
        """``"log exceeded 100 MiB; output after that was dropped"`` once capped, else None."""
        return self._reason

    @property
    def budget_spent(self) -> bool:
        """True when the build's :class:`LogBudget` (not this step's limit) capped the log."""
        return self._budget_spent

    def flush(self) -> None:
        """Send what is pending to the store and flush the timestamps file.

        Bytes held back for secret masking stay held (they may be the start
        of a secret).
        """
        with self._lock:
            if self._fd is None:
                return
            self._send_if_due(time.monotonic(), force=True)
            if self._ts is not None:
                self._ts.flush()

    def close(self) -> None:
        """Write the held-back bytes, send the last chunk, close the files."""
        with self._lock:
            if self._fd is None:
                return
            if self._held and not self._exceeded:
                held, self._held = self._held, b""
                self._emit(self._mask_end(held))
            self._send_if_due(time.monotonic(), force=True)
            os.close(self._fd)
            self._fd = None
            if self._ts is not None:
                self._ts.close()
                self._ts = None

    def __enter__(self) -> LogSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals ---------------------------------------------------------

    def _mask(self, data: bytes) -> list[bytes | memoryview]:
        """Mask what is sure now; hold back an output end that may start a secret.

        Returns the pieces to write. The common case (no secret anywhere)
        costs one C scan of ``data`` per secret, and a short look at its last
        ``len(secret) - 1`` bytes; it copies nothing.

        The result is the same as masking the whole log at once, scanning
        left to right and masking at each position the longest secret that
        starts there: a position is sure once the bytes after it are not
        the beginning of a secret longer than them (:meth:`_hold_from`).
        """
        held, keep, n = self._held, self._keep, len(data)
        if n >= keep:
            # A secret starting in ``held`` ends within held + data[:keep]; no
            # position in ``held`` can still be unsure after ``keep`` more bytes.
            edge = held + data[:keep] if held else b""
            if not any(s in data or s in edge for s in self._secrets):
                cut = self._hold_from(data, 0)
                self._held = data[cut:]
                body = data if cut == n else memoryview(data)[:cut]
                return [held, body] if held else [body]
        buf = held + data
        # Mask at C speed: split() finds the same non-overlapping matches,
        # left to right, as masking the whole log at once would. A match
        # starting before the first unsure position ``cut`` is sure; when it
        # reaches past ``cut`` the unsure position was inside it, so look for
        # the next one after it and take the matches before that too.
        assert self._splitter is not None
        parts = self._splitter.split(buf)  # [text, match, text, ..., match, text]
        cut = self._hold_from(buf, 0)
        while True:
            j = len(parts) - 1
            match_end = len(buf) - len(parts[j])
            while j >= 2 and match_end - len(parts[j - 1]) >= cut:
                match_end -= len(parts[j - 1]) + len(parts[j - 2])
                j -= 2
            if j < 2 or match_end <= cut:
                break
            cut = self._hold_from(buf, match_end)
        self._held = buf[cut:]
        if j < 2:  # no match starts before cut
            return [memoryview(buf)[:cut]] if cut else []
        return [MASK.join(parts[0:j:2]), MASK, memoryview(buf)[match_end:cut]]

    def _hold_from(self, buf: bytes, start: int, shortest: int = 1) -> int:
        """The first position ``p >= start`` where ``buf[p:]`` (at least
        ``shortest`` bytes) is the beginning of a secret longer than it:
        where the output may be in the middle of a secret. ``len(buf)`` if none.

        Only the last ``len(secret) - 1`` bytes are looked at, from the
        places holding the secret's first few bytes (its anchor: so that
        output made of one repeated byte costs one search, not one
        comparison per byte), and in the last few bytes from its first.
        """
        n = best = len(buf)
        view = None
        for secret, anchor in zip(self._secrets, self._anchors, strict=True):
            lo, hi = max(start, n - len(secret) + 1), min(best, n - shortest + 1)
            if lo >= hi:
                continue
            found = -1
            end = min(n, hi + len(anchor) - 1)  # an anchor found in [lo, end) starts before hi
            p = buf.find(anchor, lo, end)
            while p != -1:
                if view is None:
                    view = memoryview(buf)  # compared in place: no copy per candidate
                if secret.startswith(view[p:]):
                    found = p
                    break
                p = buf.find(anchor, p + 1, end)
            if found == -1:  # fewer bytes left than the anchor has
                first = anchor[:1]
                p = buf.find(first, max(lo, n - len(anchor) + 1), hi)
                while p != -1:
                    if secret.startswith(buf[p:]):
                        found = p
                        break
                    p = buf.find(first, p + 1, hi)
            if found != -1:
                best = found
        return best

    def _mask_end(self, held: bytes) -> list[bytes | memoryview]:
        """Mask the held-back end of a finished log.

        Whole secrets in it are masked as usual; an end that is the
        beginning of a secret, at least MIN_SECRET_LENGTH bytes of it, is
        masked too: the step stopped (or was stopped) in the middle of
        printing a secret, and half a secret is still a leak.
        """
        assert self._pattern is not None
        out: list[bytes | memoryview] = []
        pos, n = 0, len(held)
        while pos < n:
            tail = self._hold_from(held, pos, MIN_SECRET_LENGTH)
            match = self._pattern.search(held, pos)
            if match is not None and match.start() <= tail:
                out += (held[pos : match.start()], MASK)
                pos = match.end()
                continue
            out.append(held[pos:tail])
            if tail < n:
                out.append(MASK)
            break
        return out

    def _emit(self, pieces: list[bytes | memoryview]) -> None:
        size = sum(map(len, pieces))
        if not size:
            return
        room = self.limit - self._kept
        granted = size if size <= room else max(room, 0)
        if self.budget is not None:
            granted = self.budget.take(granted)
        if granted == size:
            self._to_file(pieces, size)
            self._kept += size
            return
        if granted:
            kept = b"".join(pieces)[:granted]
            self._to_file([kept], granted)
            self._kept += granted
        self._exceeded = True
        self._held = b""
        if granted < min(size, room):
            assert self.budget is not None
            self._budget_spent = True
            cause = self.budget.reason
        else:
            cause = f"log exceeded {format_size(self.limit)}"
        self._reason = f"{cause}; output after that was dropped"
        notice = f"\nsauci: {self._reason}\n".encode()
        self._to_file([notice], len(notice))
        if self.on_exceeded is not None:
            self.on_exceeded()

    def _to_file(self, pieces: list[bytes | memoryview], size: int) -> None:
        assert self._fd is not None
        if self._timestamps:
            if self._ts is None:
                self._ts = open(f"{self.path}.ts", "a", encoding="ascii")  # noqa: SIM115
            self._ts.write(f"{self._offset} {self._clock():.3f}\n")
        done = os.writev(self._fd, pieces)
        if done < size:  # a short write (full disk, signal): finish it piece by piece
            rest = memoryview(b"".join(pieces))[done:]
            while rest:
                rest = rest[os.write(self._fd, rest) :]
        self._offset += size
        self._written += size
        if self.store is not None and self.store_error is None:
            if not self._in_file:
                self._pending.extend(pieces)
            self._pending_len += size
        if self.on_data is not None:
            first = pieces[0]
            try:
                self.on_data(
                    first if len(pieces) == 1 and type(first) is bytes else b"".join(pieces)
                )
            except Exception as exc:
                if not self._warned_on_data:
                    self._warned_on_data = True
                    log.warning("log_viewer_failed", path=str(self.path), error=repr(exc))

    def _record_file(self) -> None:
        """Tell the store the log's file and size so far. If it declines (the
        step has chunks already), send it the bytes from the file instead,
        and chunks from then on."""
        try:
            recorded = self.store.record_log_file(
                self.build_id,
                self.step,
                str(self.path.absolute()),
                start=self._start,
                size=self._offset - self._start,
            )
            if not recorded:
                self._in_file = False
                with open(self.path, "rb") as fh:
                    fh.seek(self._start)
                    left = self._offset - self._start
                    while left > 0 and (data := fh.read(min(left, 1 << 20))):
                        self.store.append_log(self.build_id, self.step, data)
                        left -= len(data)
        except Exception as exc:
            self._store_failed(exc)

    def _store_failed(self, exc: BaseException) -> None:
        self.store_error = exc
        log.warning(
            "log_store_failed",
            build=self.build_id,
            step=self.step,
            path=str(self.path),
            error=repr(exc),
        )

    def _send_if_due(self, now: float, *, force: bool) -> None:
        if not self._pending_len:
            return
        if self._in_file:
            # By time only: a size update is cheap at any size, and 100 ms
            # is as live as chunks are.
            if force or now - self._last_send >= self.flush_interval:
                self._pending_len = 0
                self._last_send = now
                self._record_file()
                self._flush_ts(now, force=force)
            return
        if not (
            force
            or self._pending_len >= self.chunk_size
            or now - self._last_send >= self.flush_interval
        ):
            return
        first = self._pending[0]
        single = len(self._pending) == 1 and type(first) is bytes
        chunk = first if single else b"".join(self._pending)
        self._pending = []
        self._pending_len = 0
        self._last_send = now
        try:
            self.store.append_log(self.build_id, self.step, chunk)
        except Exception as exc:
            self._store_failed(exc)
        self._flush_ts(now, force=force)

    def _flush_ts(self, now: float, *, force: bool) -> None:
        if self._ts is not None and (force or now - self._last_ts_flush >= self.flush_interval):
            self._ts.flush()
            self._last_ts_flush = now


def read_timestamps(path: Path | str) -> list[tuple[int, float]]:
    """The (offset, epoch) pairs of a log's ``.ts`` sidecar (``path`` is the log
    or the sidecar itself); an empty list when there is none."""
    path = Path(path)
    if path.suffix != ".ts":
        path = Path(f"{path}.ts")
    try:
        text = path.read_text(encoding="ascii", errors="replace")
    except FileNotFoundError:
        return []
    out: list[tuple[int, float]] = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2:
            try:
                out.append((int(parts[0]), float(parts[1])))
            except ValueError:
                continue
    return out


class LogFollower:
    """Yields a log file's new bytes as it grows, from ``offset`` on.

    Iteration ends once ``stop()`` is true (or the Event is set) and
    everything written before that was yielded; with no ``stop`` it follows
    forever. The file may not exist yet. ``offset`` tells how far it got.
    """

    def __init__(
        self,
        path: Path | str,
        offset: int = 0,
        *,
        stop: Callable[[], bool] | threading.Event | None = None,
        interval: float = 0.1,
        read_size: int = 64 * 1024,
    ) -> None:
        self.path = Path(path)
        self.offset = offset
        self.interval = interval
        self.read_size = read_size
        if isinstance(stop, threading.Event):
            self._stop: Callable[[], bool] = stop.is_set
        else:
            self._stop = stop or (lambda: False)

    def __iter__(self) -> Iterator[bytes]:
        fh = None
        try:
            while True:
                stopping = self._stop()  # before reading: what came before it is yielded
                if fh is None:
                    try:
                        fh = open(self.path, "rb")  # noqa: SIM115
                        fh.seek(self.offset)
                    except FileNotFoundError:
                        fh = None
                got = False
                while fh is not None and (data := fh.read(self.read_size)):
                    got = True
                    self.offset += len(data)
                    yield data
                if stopping:
                    return
                if not got:
                    time.sleep(self.interval)
        finally:
            if fh is not None:
                fh.close()


def follow(
    path: Path | str,
    offset: int = 0,
    *,
    stop: Callable[[], bool] | threading.Event | None = None,
    interval: float = 0.1,
) -> Iterator[bytes]:
    """``iter(LogFollower(path, offset, stop=stop, interval=interval))``."""
    return iter(LogFollower(path, offset, stop=stop, interval=interval))
