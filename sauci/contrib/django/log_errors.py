"""Where a failed step's log shows its first error: the first line that matches
an error pattern (``Error``, ``FAILED``, ``Traceback``, ``error:``, ...), for
the log page to open at, read piece by piece from a bounded window.
"""

from __future__ import annotations

import re
from typing import Protocol

__all__ = ["ERROR_PATTERN", "first_error"]

# "Error" ends a word (TypeError:, Error:, AssertionError) but "Errors: 0" and
# "-Werror" do not match; the rest are what test runners and compilers print.
ERROR_PATTERN = re.compile(
    rb"Error\b|\bERROR\b|FAILED|\bFAIL\b|Traceback \(most recent call last\)|\berror(?:\[\w+\])?:"
    rb"|\bfatal:|panicked at"
)


# Every match of ERROR_PATTERN holds one of these: bytes.find skips the
# lines without any at C speed, and only lines with one meet the pattern.
_LITERALS = (b"Error", b"ERROR", b"FAIL", b"Traceback", b"error", b"fatal:", b"panicked at")


def _search(chunk: bytes, end: int) -> int | None:
    """Where the first match of ERROR_PATTERN in ``chunk[:end]`` starts, or None."""
    # Each word's next occurrence, found again only once passed: linear
    # however many lines hold a word without matching ("Errors: 0").
    nexts = {word: chunk.find(word, 0, end) for word in _LITERALS}
    pos = 0
    while True:
        for word, at in nexts.items():
            if 0 <= at < pos:
                nexts[word] = chunk.find(word, pos, end)
        hits = [at for at in nexts.values() if at >= 0]
        if not hits:
            return None
        hit = min(hits)
        start = chunk.rfind(b"\n", 0, hit) + 1
        stop = chunk.find(b"\n", hit, end)
        stop = end if stop < 0 else stop
        found = ERROR_PATTERN.search(chunk, start, stop)
        if found is not None:
            return found.start()
        pos = stop + 1


class _Log(Protocol):
    def read(self, offset: int, limit: int) -> bytes: ...


def first_error(log: _Log, start: int, end: int, *, piece: int = 1 << 20) -> int | None:
    """The byte offset of the start of the first line in [``start``, ``end``) that
    matches :data:`ERROR_PATTERN` (``start`` is a line start), else None."""
    pos = start
    carry = b""  # the unfinished last line of the previous piece
    while pos < end:
        data = log.read(pos, min(piece, end - pos))
        if not data:
            break
        chunk = carry + data
        base = pos - len(carry)
        pos += len(data)
        cut = chunk.rfind(b"\n") + 1 if pos < end else len(chunk)
        found = _search(chunk, cut)
        if found is not None:
            return base + chunk.rfind(b"\n", 0, found) + 1
        carry = chunk[cut:]
    return None
