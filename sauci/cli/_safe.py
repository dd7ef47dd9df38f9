"""Text from a repository, made safe to print on a terminal.

Commit messages, authors, branch names, step names, reasons and test names
come from whoever can push. Printed as they are, their control characters
would drive the reader's terminal (set its title, clear the screen, move the
cursor) or, with Unicode bidi controls, show text other than what is there.
"""

from __future__ import annotations

__all__ = ["printable"]

# C0 controls but tab, DEL, C1 controls, and the bidi embedding, override and
# isolate characters ("Trojan Source", CVE-2021-42574).
_UNSAFE = [*range(0x00, 0x09), *range(0x0A, 0x20), 0x7F, *range(0x80, 0xA0)]
_UNSAFE += [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]
_TABLE = {code: f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" for code in _UNSAFE}


def printable(text: str) -> str:
    """``text`` with every control character written as a visible escape (``\\x1b``)."""
    return text.translate(_TABLE)
