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

import contextlib
import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

import attrs

from sauci._logging import get_logger
from sauci.core._log_delivery import StoreDelivery
from sauci.core.logbudget import LogBudget, format_size
from sauci.core.logcheck import LogChecksum
from sauci.core.logfollow import LogFollower, follow, read_timestamps
from sauci.core.logmask import MASK, MIN_SECRET_LENGTH, SecretMasker
from sauci.core.models import DEFAULT_LOG_LIMIT

# The budget, the masker and the followers live in their own modules; their
# names stay importable from here, where callers have always found them.
__all__ = [
    "MASK",
    "MIN_SECRET_LENGTH",
    "LogBudget",
    "LogFollower",
    "LogSink",
    "SecretMasker",
    "follow",
    "format_size",
    "read_timestamps",
]

log = get_logger(__name__)


def _direct(store: Any) -> Any:
    return getattr(store, "direct", store)


@attrs.define(slots=False, eq=False, repr=False)
class LogSink(StoreDelivery):
    """Writes one step's log: masked, capped, to disk as it comes and to the store in chunks.

    ``store`` (optional) gets ``store.append_log(build_id, step, chunk)``, or,
    when it has the ``log_files`` capability, ``store.record_log_file(...)``
    with the file's path and the log's size so far; a failing store never
    loses the disk log: the file is the truth, the store is sent what it
    lacks from it. While the store fails, the bytes wait on disk and are sent
    again with back-off (0.2 s doubling to 5 s); :meth:`close` keeps trying
    until the store has been failing for ``deadline`` seconds (0: not at all).
    :attr:`undelivered` is what the store still lacks after that; the caller
    must not call a step with undelivered bytes "passed".
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

    # ``path`` is the one positional argument; the rest are keywords. (Written
    # field by field: before attrs 25.4 a class-wide kw_only=True overrides a
    # field's kw_only=False, and attrs>=23.1 is allowed.)
    path: Path = attrs.field(converter=Path)
    # A RetryingStore would block the output's reader: use the store itself,
    # and retry on this sink's own schedule.
    store: Any = attrs.field(default=None, converter=_direct, kw_only=True)
    build_id: int | None = attrs.field(default=None, kw_only=True)
    step: str | None = attrs.field(default=None, kw_only=True)
    limit: int = attrs.field(default=DEFAULT_LOG_LIMIT, kw_only=True)
    secrets: Sequence[str | bytes] = attrs.field(default=(), kw_only=True)
    chunk_size: int = attrs.field(default=64 * 1024, kw_only=True)
    flush_interval: float = attrs.field(default=0.1, kw_only=True)
    # The timestamps sidecar is made at the first write: a silent step
    # (a file creation costs ~0.25 ms here) has none, which readers take
    # as "no timestamps".
    _timestamps: bool = attrs.field(default=True, kw_only=True)
    on_data: Callable[[bytes], None] | None = attrs.field(default=None, kw_only=True)
    budget: LogBudget | None = attrs.field(default=None, kw_only=True)
    on_exceeded: Callable[[], None] | None = attrs.field(default=None, kw_only=True)
    _clock: Callable[[], float] = attrs.field(default=time.time, kw_only=True)
    deadline: float = attrs.field(default=0.0, kw_only=True)

    def __attrs_post_init__(self) -> None:
        self.store_error: BaseException | None = None
        self._masker = SecretMasker(self.secrets)
        self._lock = threading.Lock()  # a sink may be written by the sandbox and the executor
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd: int | None = os.open(
            self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644
        )
        self._offset = os.fstat(self._fd).st_size  # file offset of the next byte
        self._checksum = LogChecksum(self.path, self._offset)  # sealed beside it at close
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
        store = self.store
        self._in_file = store is not None and "log_files" in getattr(store, "capabilities", ())
        self._delivered = 0  # bytes after _start the store has (or knows of, in a file)
        self._base = 0  # where this sink's bytes start in the store's log
        self._behind = False  # a send failed: catch up from the file
        self._retry_at = 0.0
        self._pause = 0.0
        self._down_since = 0.0

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
            self._emit(self._masker.mask(data) if self._masker else [data])
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
            if self._masker.held and not self._exceeded:
                held, self._masker.held = self._masker.held, b""
                self._emit(self._masker.mask_end(held))
            self._send_if_due(time.monotonic(), force=True)
            self._wait_for_store()
            os.close(self._fd)
            self._fd = None
            self._checksum.seal(self.path)
            if self._ts is not None:
                with contextlib.suppress(OSError):  # a full disk: the times only
                    self._ts.close()
                self._ts = None

    def __enter__(self) -> LogSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals ---------------------------------------------------------

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
        self._masker.held = b""
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
        done = 0
        try:
            done = os.writev(self._fd, pieces)
            if done < size:  # a short write (full disk, signal): finish it piece by piece
                rest = memoryview(b"".join(pieces))[done:]
                while rest:
                    wrote = os.write(self._fd, rest)
                    done += wrote
                    rest = rest[wrote:]
        except OSError:
            # A full disk: what did reach the file is the log, and the store
            # gets it too; the error ends the step (its log cannot be kept).
            self._checksum.valid = False
            if done:
                self._to_store([b"".join(pieces)[:done]], done)
            raise
        self._checksum.update(pieces)
        self._to_store(pieces, size)

    def _to_store(self, pieces: list[bytes | memoryview], size: int) -> None:
        self._offset += size
        self._written += size
        if self.store is not None:
            if not self._in_file and not self._behind:
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
                self._delivered = 0
                self._base = self.store.log_size(self.build_id, self.step)
                self._behind = True
                self._send_from_file()
                return
            self._delivered = self._offset - self._start
            self._recovered()
        except Exception as exc:
            self._store_failed(exc)

    def _send_if_due(self, now: float, *, force: bool) -> None:
        if self._behind:
            if self.store is not None and (force or now >= self._retry_at):
                self._last_send = now
                self._catch_up()
            self._flush_ts(now, force=force)
            return
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
            self._delivered += len(chunk)
        except Exception as exc:
            self._store_failed(exc)
        self._flush_ts(now, force=force)

    def _flush_ts(self, now: float, *, force: bool) -> None:
        if self._ts is not None and (force or now - self._last_ts_flush >= self.flush_interval):
            self._last_ts_flush = now
            try:
                self._ts.flush()
            except OSError as exc:  # a full disk: the times are lost, not the log
                log.warning("log_timestamps_failed", path=str(self.path), error=str(exc))
                with contextlib.suppress(OSError):
                    self._ts.close()
                self._ts = None
