"""The last lines of a step's log: what a failed step's page and ``sauci show`` print
instead of only "exit code 1".

The log is read backwards from its end in blocks, and never more than
``max_bytes`` of it, so a 1 GB log costs what a small one does. The lines
come back as text without ANSI escapes or control characters; a front end
still escapes them for its medium (HTML, a terminal).
"""

from __future__ import annotations

import os
import re

from sauci.core.models import StepRun
from sauci.exceptions import StoreError
from sauci.typing import Store

__all__ = ["DEFAULT_LINES", "MAX_TAIL_BYTES", "clean_line", "read_tail", "step_tail", "tail_of"]

DEFAULT_LINES = 20
MAX_TAIL_BYTES = 64 * 1024  # however long its lines, a tail never reads more
MAX_LINE_CHARS = 1000  # a longer line is cut (a minified file, a progress bar)
_BLOCK = 8192

# CSI (ESC [ params final), OSC (ESC ] ... BEL or ESC \), any other ESC + one char.
_ESCAPE = re.compile(r"\x1b\[[0-9;:?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b.?")
# C0 controls but tab, and DEL.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def clean_line(text: str) -> str:
    """``text`` without escape sequences or control characters, at most MAX_LINE_CHARS.

    A carriage return keeps what was drawn after it, as a terminal would show a
    progress bar's last state.
    """
    text = _ESCAPE.sub("", text)
    if "\r" in text:
        parts = [p for p in text.split("\r") if p.strip()]
        text = parts[-1] if parts else ""
    text = _CONTROL.sub("", text).rstrip()
    if len(text) > MAX_LINE_CHARS:
        text = text[:MAX_LINE_CHARS] + "…"
    return text


def tail_of(data: bytes, lines: int, *, partial_first: bool) -> list[str]:
    """The last ``lines`` non-empty lines of ``data``; ``partial_first``: the first
    line of ``data`` may be the end of a longer one (dropped unless it is all there is)."""
    if lines <= 0:
        return []
    text = [clean_line(c.decode("utf-8", errors="replace")) for c in data.split(b"\n")]
    if partial_first and text:
        # The end of a line cut at the read's start: shown only when it is needed.
        text[0] = "…" + text[0] if text[0] else ""
    out = [t for t in text if t]
    return out[-lines:]


def read_tail(
    path: str | os.PathLike[str], lines: int = DEFAULT_LINES, *, max_bytes: int = MAX_TAIL_BYTES
) -> list[str]:
    """The last ``lines`` lines of the file at ``path`` (empty when it cannot be read)."""
    try:
        with open(path, "rb") as fh:
            end = fh.seek(0, os.SEEK_END)
            start = end
            data = b""
            # Enough newlines for the lines asked (one more: the first may be cut).
            while start > 0 and end - start < max_bytes and data.count(b"\n") <= lines + 1:
                step = min(_BLOCK, start, max_bytes - (end - start))
                start -= step
                fh.seek(start)
                data = fh.read(step) + data
    except OSError:
        return []
    return tail_of(data, lines, partial_first=start > 0)


def step_tail(store: Store, step: StepRun, lines: int = DEFAULT_LINES) -> list[str]:
    """The last lines of ``step``'s log: from its file on this machine, else from the
    store's chunks (a build run by a worker elsewhere)."""
    from sauci.core.logfile import trusted_log_file

    path = trusted_log_file(store, step)
    if path is not None:
        return read_tail(path, lines)
    try:
        size = step.log_bytes or store.log_size(step.build_id, step.name)
        if size <= 0:
            return []
        start = max(0, size - MAX_TAIL_BYTES)
        data = store.read_log(step.build_id, step.name, start, size - start)
    except StoreError:  # a store that cannot answer: the page shows the rest
        return []
    return tail_of(data, lines, partial_first=start > 0)
