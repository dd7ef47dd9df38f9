"""A docker step's output stream (a container's attach or an exec's start),
read to its end while the step's clock is minded: output copied to the log,
cancel and the timeout answered with ``terminate``, then ``kill`` after the
grace period; once the stream is closed, ``ended`` is asked until the step's
process has ended (its stdout may close before it does).
"""

from __future__ import annotations

import os
import select
import ssl
import time
from collections.abc import Callable
from typing import Any

from sauci.sandbox._docker_daemon import POLL_INTERVAL, frames
from sauci.sandbox._steps import Job, StepClock

__all__ = ["supervise_stream"]

READ_SIZE = 256 * 1024


class _Reader:
    """Reads the stream: straight from the fd on a unix or tcp socket,
    through the TLS layer (non-blocking, minding what it holds decrypted
    already) when the daemon is reached over TLS.
    """

    def __init__(self, sock: Any) -> None:
        self.fd = sock.fileno()
        self.tls = sock if isinstance(sock, ssl.SSLSocket) else None
        if self.tls is not None:
            self.tls.setblocking(False)

    def pending(self) -> bool:
        return self.tls is not None and self.tls.pending() > 0

    def __call__(self) -> bytes | None:
        if self.tls is None:
            return os.read(self.fd, READ_SIZE)
        try:
            return self.tls.recv(READ_SIZE)
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
            return None


def supervise_stream(
    job: Job,
    sock: Any,
    clock: StepClock,
    *,
    terminate: Callable[[], object],
    kill: Callable[[], object],
    ended: Callable[[], int | None],
    quiet: Callable[[], object] | None = None,
    scan: Callable[[bytes], tuple[bytes, int | None]] | None = None,
) -> int:
    """Copy ``sock``'s frames to the job's log until it closes and ``ended``
    gives the exit code (None: still running); that code. ``quiet`` is
    called whenever no output came for a while. ``scan`` (a step agent's
    stream, which stays open) takes the output read and gives back the part
    that is the step's, and the step's status once its end has come."""
    read = _Reader(sock)
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLIN)
    buffer = bytearray()
    eof = False
    log = job.log
    flush = getattr(log, "flush", None)
    while True:
        clock.tick(time.monotonic(), terminate, kill)
        if not eof:
            if read.pending() or poller.poll(int(POLL_INTERVAL * 1000)):
                data = read()
                if data is None:  # part of a TLS record: the rest is on its way
                    continue
                if data:
                    buffer += data
                    out = frames(buffer)
                    code = None
                    if scan is not None and out:
                        out, code = scan(out)
                    if out:
                        log.write(out)  # one write per read: large pieces
                    if code is not None:
                        return code
                    continue
                eof = True
                rest = getattr(scan, "rest", None)
                if rest is not None and (held := rest()):
                    log.write(held)
            else:
                if flush is not None:
                    flush()
                if quiet is not None:
                    quiet()
            continue
        # Output is closed; the step may still run (its main process closed
        # stdout). Wait for it, still minding the clock.
        code = ended()
        if code is not None:
            return code
