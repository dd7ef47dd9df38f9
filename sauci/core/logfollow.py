"""Reading a step's log as it grows (followers) and its timestamps sidecar."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

__all__ = ["LogFollower", "follow", "read_timestamps"]


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
