"""How a LogSink keeps the store in step with its file: after a failed send
the bytes wait on disk and are sent again, read back from the file, with
back-off; at close, until the store has failed for ``deadline`` seconds."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from sauci._logging import get_logger

__all__ = ["StoreDelivery"]

log = get_logger("sauci.core.logsink")


class StoreDelivery:
    """The part of :class:`~sauci.core.logsink.LogSink` that delivers to the store."""

    store: Any
    build_id: int | None
    step: str | None
    path: Path
    deadline: float
    store_error: BaseException | None
    _in_file: bool
    _start: int
    _offset: int
    _delivered: int
    _base: int
    _behind: bool
    _retry_at: float
    _pause: float
    _down_since: float
    _pending: list[Any]
    _pending_len: int

    def _record_file(self) -> None:  # LogSink's
        raise NotImplementedError

    @property
    def undelivered(self) -> int:
        """Bytes of this sink's log the store does not have (0 without a store)."""
        if self.store is None:
            return 0
        return self._offset - self._start - self._delivered

    def _send_from_file(self) -> None:
        """Send the store what it lacks, read back from the file (after a failure)."""
        try:
            # A send that failed may have landed all the same (the answer was
            # lost, not the write): ask what the store has, never send twice.
            size_of = getattr(self.store, "log_size", None)  # a minimal writer may lack it
            if size_of is not None:
                has = size_of(self.build_id, self.step) - self._base
                self._delivered = max(0, min(has, self._offset - self._start))
            with open(self.path, "rb") as fh:
                fh.seek(self._start + self._delivered)
                left = self._offset - self._start - self._delivered
                while left > 0 and (data := fh.read(min(left, 1 << 20))):
                    self.store.append_log(self.build_id, self.step, data)
                    self._delivered += len(data)
                    left -= len(data)
        except Exception as exc:
            self._store_failed(exc)
            return
        self._recovered()

    def _store_failed(self, exc: BaseException) -> None:
        now = time.monotonic()
        if not self._behind or self.store_error is None:
            self._down_since = now
            log.warning(
                "log_store_failed",
                build=self.build_id,
                step=self.step,
                path=str(self.path),
                error=repr(exc),
            )
        self.store_error = exc
        self._behind = True
        self._pending = []
        self._pause = min(5.0, max(0.2, self._pause * 2))
        self._retry_at = now + self._pause

    def _recovered(self) -> None:
        if self.store_error is not None:
            log.info("log_store_recovered", build=self.build_id, step=self.step)
        self._behind = False
        self.store_error = None
        self._pause = 0.0

    def _catch_up(self) -> None:
        self._pending = []
        self._pending_len = 0
        if self._in_file:
            self._record_file()
        else:
            self._send_from_file()

    def _wait_for_store(self) -> None:
        """At close: keep trying (with back-off) while the store has failed for
        less than ``deadline`` seconds."""
        while self.store is not None and self._behind:
            now = time.monotonic()
            if now - self._down_since >= self.deadline:
                log.error(
                    "log_store_gave_up",
                    build=self.build_id,
                    step=self.step,
                    path=str(self.path),
                    undelivered=self.undelivered,
                )
                return
            time.sleep(max(0.0, min(self._retry_at, self._down_since + self.deadline) - now))
            self._catch_up()
