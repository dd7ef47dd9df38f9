"""Terminal output: colours, status icons, durations and tables."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from typing import TextIO

from sauci.core.models import Status

__all__ = ["Style", "age", "duration", "table"]

_ICONS = {
    Status.QUEUED: "◌",
    Status.RUNNING: "▶",
    Status.PASSED: "✔",
    Status.FAILED: "✘",
    Status.ERRORED: "!",
    Status.CANCELLED: "⊘",
    Status.SKIPPED: "↷",
}
_COLOURS = {
    Status.QUEUED: "2",
    Status.RUNNING: "36",
    Status.PASSED: "32",
    Status.FAILED: "31",
    Status.ERRORED: "35",
    Status.CANCELLED: "33",
    Status.SKIPPED: "2",
}


class Style:
    """ANSI styling that switches itself off for pipes and NO_COLOR."""

    def __init__(self, stream: TextIO | None = None, *, color: str = "auto") -> None:
        stream = stream or sys.stdout
        if color == "always":
            self.enabled = True
        elif color == "never":
            self.enabled = False
        else:
            self.enabled = stream.isatty() and not os.environ.get("NO_COLOR")

    def paint(self, text: str, code: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.enabled else text

    def bold(self, text: str) -> str:
        return self.paint(text, "1")

    def dim(self, text: str) -> str:
        return self.paint(text, "2")

    def status(self, status: Status, *, allowed: bool = False, word: bool = True) -> str:
        """Icon and word, so status is readable without colour."""
        label = status.value + (" (allowed)" if allowed else "")
        text = f"{_ICONS[status]} {label}" if word else _ICONS[status]
        # An allowed failure is never green.
        code = "33" if allowed and status is Status.FAILED else _COLOURS[status]
        return self.paint(text, code)


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def age(at: float | None, now: float | None = None) -> str:
    if at is None:
        return "-"
    delta = max(0.0, (now or time.time()) - at)
    for size, unit in ((86400, "d"), (3600, "h"), (60, "m")):
        if delta >= size:
            return f"{int(delta // size)}{unit} ago"
    return f"{int(delta)}s ago"


def _visible_len(text: str) -> int:
    import re

    return len(re.sub(r"\x1b\[[0-9;]*m", "", text))


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], style: Style) -> str:
    """Left-aligned columns; widths measured without ANSI codes."""
    widths = [_visible_len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], _visible_len(cell))

    def line(cells: Sequence[str]) -> str:
        parts = [c + " " * (w - _visible_len(c)) for c, w in zip(cells, widths, strict=False)]
        return "  ".join(parts).rstrip()

    out = [style.bold(line(headers))]
    out.extend(line(row) for row in rows)
    return "\n".join(out)
