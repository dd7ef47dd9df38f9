"""A build's log budget: the bytes all its steps may keep together, and sizes as people read them."""

from __future__ import annotations

import threading

__all__ = ["LogBudget", "format_size"]


def format_size(size: int) -> str:
    """``104857600`` -> ``"100 MiB"``, ``1536`` -> ``"1.5 KiB"``, ``10`` -> ``"10 bytes"``."""
    for unit, factor in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= factor:
            value = size / factor
            text = f"{value:.1f}".rstrip("0").rstrip(".")  # "3.0001" -> "3", not "3."
            return f"{text} {unit}"
    return f"{size} bytes"


class LogBudget:
    """The log bytes one build may keep, across all its steps and matrix entries.

    One budget is shared by the sinks of a build's steps (on their threads);
    each takes what it keeps before writing it, so the build's logs never
    exceed ``limit`` (beside the one-line notices that say where output was
    dropped), however many steps flood at once.
    """

    def __init__(self, limit: int) -> None:
        if limit < 0:
            raise ValueError(f"a log budget cannot be negative: {limit}")
        self.limit = limit
        self._left = limit
        self._lock = threading.Lock()

    def take(self, size: int) -> int:
        """Take up to ``size`` bytes; returns how many (fewer once it runs out)."""
        with self._lock:
            granted = size if size <= self._left else self._left
            self._left -= granted
        return granted

    @property
    def left(self) -> int:
        """Bytes the build may still keep."""
        return self._left

    @property
    def reason(self) -> str:
        """``"the build's logs exceeded 1 GiB"``: what a step cut by it says."""
        return f"the build's logs exceeded {format_size(self.limit)}"
