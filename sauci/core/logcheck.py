"""A checksum of each step's log file, kept beside it, so that a file changed
on disk after its step ended is found even when its size did not change.

The LogSink takes the CRC-32 of the bytes as it writes them and, when it
closes (the step's log is complete), writes ``<step>.log.sum``:
``crc32:<hex> <size>``. CRC-32 and not a cryptographic hash: what it looks
for is damage, not an adversary (see below), and it costs a quarter of
SHA-256's time (about 0.2 ms per MiB here) on the sink's path and on the
reader's first check of a file.

It is kept beside the file, not in the store, because it describes that
file, which exists only on the machine that ran the step (the store's chunks
are the other copy, checked by their size), and because it needs no new
column or migration in five stores. It guards against a file changed after
the fact (a failing disk, an editor, a tool); someone who can write the data
dir could change both. A silent step (an empty log) gets none: a file costs
about 0.25 ms to create, and an empty log that grows is a size change.

Readers ask :func:`log_file_changed`; its answer is cached per file by inode,
size and modification time, so a page's range requests read a log once.
"""

from __future__ import annotations

import os
import threading
import zlib
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path

from sauci._logging import get_logger

__all__ = ["LogChecksum", "checksum_path", "log_file_changed"]

log = get_logger(__name__)

_READ = 1 << 20
_ALGORITHM = "crc32"
_MAX_CACHED = 256
_verdicts: OrderedDict[tuple[str, int, int, int, int], bool] = OrderedDict()
_cache_lock = threading.Lock()


def checksum_path(path: Path) -> Path:
    return path.with_name(path.name + ".sum")


class LogChecksum:
    """The running checksum of a log file as its sink writes it."""

    def __init__(self, path: Path, offset: int) -> None:
        self._crc = 0
        self.size = 0
        self.valid = True
        if offset:  # a file the sink appends to: its earlier bytes count too
            try:
                with open(path, "rb") as fh:
                    while self.size < offset and (data := fh.read(min(_READ, offset - self.size))):
                        self.update((data,))
            except OSError:
                self.valid = False
            self.valid = self.valid and self.size == offset

    def update(self, pieces: Iterable[bytes | memoryview]) -> None:
        for piece in pieces:
            self._crc = zlib.crc32(piece, self._crc)
            self.size += len(piece)

    def seal(self, path: Path) -> None:
        """Write the checksum beside ``path`` (not for an empty log, nor when a
        write failed part-way: then what the file holds is not known here)."""
        if not self.valid or not self.size:
            return
        target = checksum_path(path)
        tmp = target.with_name(target.name + ".tmp")
        try:
            tmp.write_text(f"{_ALGORITHM}:{self._crc:08x} {self.size}\n", encoding="ascii")
            os.replace(tmp, target)
        except OSError as exc:  # a full disk: the log is kept, unchecked
            log.warning("log_checksum_unwritable", path=str(path), error=str(exc))
            tmp.unlink(missing_ok=True)


def _digest(path: Path) -> tuple[str, int]:
    crc = size = 0
    with open(path, "rb") as fh:
        while data := fh.read(_READ):
            crc = zlib.crc32(data, crc)
            size += len(data)
    return f"{_ALGORITHM}:{crc:08x}", size


def log_file_changed(path: Path) -> bool | None:
    """True when the log file no longer matches the checksum recorded when its
    step ended, False when it does, None when none was recorded (or unreadable)."""
    recorded = checksum_path(path)
    try:
        meta, stat = os.stat(recorded), os.stat(path)
    except OSError:
        return None
    key = (str(path), stat.st_ino, stat.st_size, stat.st_mtime_ns, meta.st_mtime_ns)
    with _cache_lock:
        if key in _verdicts:
            _verdicts.move_to_end(key)
            return _verdicts[key]
    try:
        want, want_size = recorded.read_text(encoding="ascii").split()
        if not want.startswith(f"{_ALGORITHM}:"):
            return None  # a kind of checksum this version does not know
        changed = stat.st_size != int(want_size) or _digest(path) != (want, int(want_size))
    except (OSError, ValueError):
        return None
    with _cache_lock:
        _verdicts[key] = changed
        while len(_verdicts) > _MAX_CACHED:
            _verdicts.popitem(last=False)
    return changed
