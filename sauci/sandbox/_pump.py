"""Reading a local step's output into its log while waiting for its main process to end."""

from __future__ import annotations

import math
import os
import select
import subprocess
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sauci.typing import LogWriter

__all__ = ["GATHER", "GATHER_BELOW", "READ_SIZE", "STORE_FLUSH_INTERVAL", "OutputPump"]

READ_SIZE = 64 * 1024
STORE_FLUSH_INTERVAL = 0.1
# After a read of less than GATHER_BELOW bytes, the next read waits GATHER
# seconds (or the main process's exit): see OutputPump.
GATHER = 0.01
GATHER_BELOW = 4096


class OutputPump:
    """Moves a step's output from its pipe to its log, in large reads.

    A pidfd turns readable when the main process exits, so one poll() waits
    for output and for the exit together: no sleep-and-retry. A quiet step's
    log is flushed every STORE_FLUSH_INTERVAL, so its last lines reach the
    store too.

    A step that flushes every character (pytest's progress dots: 27,000
    writes of one byte for 27,000 tests) would otherwise cost a read and a
    log write (mask, file, timestamp, viewers) per byte, in this process,
    while the step runs. So after a small read (under GATHER_BELOW bytes)
    the pump lets output gather in the pipe for GATHER seconds before it
    reads again, waking at once when the main process exits; a large read
    (a step writing fast) is followed by the next at once, so the pipe
    never stays full. Output reaches the log at most GATHER later. While
    the exit cannot be watched (no pidfd) and once the main process has
    ended, every read is made at once.
    """

    def __init__(self, proc: subprocess.Popen[bytes], log: LogWriter, started: float) -> None:
        assert proc.stdout is not None
        self._fd = proc.stdout.fileno()
        self._log = log
        self._poller = select.poll()
        self._poller.register(self._fd, select.POLLIN)
        self._pidfd = _pidfd_open(proc.pid)
        if self._pidfd is not None:
            self._poller.register(self._pidfd, select.POLLIN)
        self.eof = False
        self._flush: Callable[[], None] | None = getattr(log, "flush", None)
        self._last_flush = started
        self._exit_poller: select.poll | None = None
        if self._pidfd is not None:
            self._exit_poller = select.poll()
            self._exit_poller.register(self._pidfd, select.POLLIN)
        self._gather_until = 0.0  # no read before then, unless the main process exits

    @property
    def watches_exit(self) -> bool:
        """True while a poll also wakes up when the main process exits."""
        return self._pidfd is not None

    def pump(self, wait: float) -> bool:
        """Wait up to ``wait`` s for output (or the main process's exit);
        True when a piece was read."""
        if self.eof and self._pidfd is None:
            return False
        gather = self._gather_until - time.monotonic()
        if gather > 0 and self._exit_poller is not None and not self.eof:
            # Let the output gather, unless the main process exits meanwhile.
            exited = self._exit_poller.poll(max(0, math.ceil(min(wait, gather) * 1000)))
            if not exited and wait < gather:
                return False  # the caller's wait is over; the next call gathers on
            wait = 0.0 if exited else wait - gather
        events = self._poller.poll(max(0, math.ceil(wait * 1000)))
        for efd, _ in events:
            if efd != self._fd:
                continue
            data = os.read(self._fd, READ_SIZE)
            if data:
                # After log.exceeded the writer drops it; reading on keeps
                # the step from blocking on a full pipe.
                self._log.write(data)
                if len(data) < GATHER_BELOW:
                    self._gather_until = time.monotonic() + GATHER
                return True
            self.eof = True
            self._poller.unregister(self._fd)
        now = time.monotonic()
        if (
            not events
            and self._flush is not None
            and now - self._last_flush >= STORE_FLUSH_INTERVAL
        ):
            self._flush()
            self._last_flush = now
        return False

    def process_ended(self) -> None:
        """Stop watching the main process: its pidfd is readable for good now
        and would make :meth:`pump` spin."""
        if self._pidfd is not None:
            self._poller.unregister(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = None
            self._exit_poller = None


def _pidfd_open(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):  # Linux < 5.3, or not Linux
        return None
