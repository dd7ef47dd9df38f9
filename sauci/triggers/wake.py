"""Waking ``sauci serve`` from another process: a named pipe in the spool directory.

A git hook, ``sauci cancel`` or ``sauci rerun`` changes what the server should
do (a spool file, a cancel request or a queued build in the store). Instead of
the server looking for such changes on a fixed tick, the writer pokes
``<spool>/wake`` with one byte and the server's reader thread wakes its loop
at once. A poke is only a hint: it carries no data, and the server's slow
safety round (``--idle-tick``) still finds whatever a poke missed.

The pipe is opened without blocking by writers: with no server reading, the
open fails at once (ENXIO) and the poke is skipped; a pipe full of pokes
nobody read yet (EAGAIN) has already said everything a poke can say. The shell
hook does the same with ``dd oflag=nonblock``. The spool directory is the
server's own (mode 0700), so only its user can poke, and a poke can only make
the server look sooner.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import threading
from collections.abc import Callable
from pathlib import Path

from sauci._logging import get_logger

__all__ = ["WAKE_NAME", "WakeReader", "poke"]

log = get_logger(__name__)

WAKE_NAME = "wake"


def poke(spool_dir: Path | str) -> bool:
    """Wake the server watching ``spool_dir``, if one is; True when it was told."""
    try:
        fd = os.open(Path(spool_dir) / WAKE_NAME, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:  # no pipe (no server ever ran here), or nobody reading it now
        return False
    try:
        os.write(fd, b"x")
    except BlockingIOError:
        pass  # full of pokes the server has not read yet: it is waking anyway
    except OSError:
        return False
    finally:
        os.close(fd)
    return True


class WakeReader:
    """Calls ``on_wake`` each time a process pokes ``<spool_dir>/wake`` (on a thread)."""

    def __init__(self, spool_dir: Path, on_wake: Callable[[], None]) -> None:
        self.path = Path(spool_dir) / WAKE_NAME
        self.on_wake = on_wake
        self._fd: int | None = None
        self._closing = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._make_pipe()
        # Read and write: the pipe then always has a writer (this process), so
        # a read waits for data instead of returning end-of-file between pokes.
        self._fd = os.open(self.path, os.O_RDWR | os.O_CLOEXEC)
        self._thread = threading.Thread(target=self._read, name="sauci-wake", daemon=True)
        self._thread.start()

    def _make_pipe(self) -> None:
        try:
            mode = os.lstat(self.path).st_mode
        except FileNotFoundError:
            mode = None
        if mode is not None and not stat.S_ISFIFO(mode):
            self.path.unlink()  # not ours to keep: a file where the pipe belongs
            mode = None
        if mode is None:
            with contextlib.suppress(FileExistsError):  # another start made it meanwhile
                os.mkfifo(self.path, 0o600)

    def _read(self) -> None:
        fd = self._fd
        assert fd is not None
        while not self._closing:
            try:
                data = os.read(fd, 4096)
            except OSError as exc:
                if exc.errno == errno.EINTR:
                    continue
                log.warning("wake_pipe_failed", path=str(self.path), error=str(exc))
                return
            if self._closing or not data:
                return
            self.on_wake()

    def close(self) -> None:
        self._closing = True
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            os.write(fd, b"x")  # let the reader see that it is closing
        if self._thread is not None:
            self._thread.join(1.0)
        os.close(fd)
