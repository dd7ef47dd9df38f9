"""Noticing that a step without network failed on a network error.

A step that runs ``pip install`` with the network off fails with a message a
person must know to read; the step's result then says why in words
(:func:`network_note`). The output is watched as it passes (a LogWriter
wrapper), so nothing reads the log again afterwards.
"""

from __future__ import annotations

import re

from sauci.typing import LogWriter

__all__ = ["NetworkErrorWatch", "network_note"]

# What resolvers, curl, git, pip, npm and friends print when there is no network.
_PATTERNS = re.compile(
    rb"Temporary failure in name resolution|Network is unreachable|"
    rb"Could not resolve host|Failed to establish a new connection|"
    rb"Name or service not known|No address associated with hostname|"
    rb"getaddrinfo (?:EAI_AGAIN|ENOTFOUND)|Could not resolve hostname",
    re.IGNORECASE,
)
_KEEP = 64  # bytes kept between writes, so a message split across two is still seen


def network_note(why: str) -> str:
    """The note a failed step's result carries (``why``: who turned the network off)."""
    return f"network is off for this step ({why})"


class NetworkErrorWatch:
    """A LogWriter that passes everything on to ``log`` and remembers whether a
    network error went through."""

    def __init__(self, log: LogWriter) -> None:
        self.log = log
        self.seen = False
        self._tail = b""

    def write(self, data: bytes) -> None:
        if not self.seen and data:
            window = self._tail + data
            if _PATTERNS.search(window):
                self.seen = True
            self._tail = window[-_KEEP:]
        self.log.write(data)

    def flush(self) -> None:
        self.log.flush()

    @property
    def exceeded(self) -> bool:
        return self.log.exceeded
