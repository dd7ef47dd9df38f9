"""Terminal escape sequences taken out of step output that is not shown on a
colour terminal (``NO_COLOR``, a pipe, a file, ``--color never``)."""

from __future__ import annotations

import re

__all__ = ["strip_ansi"]

# ECMA-48 in its 7-bit forms: CSI (colours, cursor moves), OSC (titles,
# hyperlinks) ended by BEL or ST, DCS/SOS/PM/APC strings ended by ST, and the
# two- or three-byte escapes (charset choice, keypad modes, save cursor). An
# unfinished string runs to the end of the text. The 8-bit C1 forms are left
# alone: in UTF-8 those bytes are parts of characters. Compiled (and kept in
# re's cache) when output first holds an escape: most runs' output holds none.
_ESCAPE = (
    rb"\x1b(?:"
    rb"\[[0-?]*[ -/]*[@-~]"
    rb"|\][^\x07\x1b]*(?:\x07|\x1b\\)?"
    rb"|[PX^_][^\x1b]*(?:\x1b\\)?"
    rb"|[ -/]*[0-~]"
    rb")?"
)


def strip_ansi(data: bytes) -> bytes:
    """``data`` without escape sequences (a lone ESC goes too)."""
    if b"\x1b" not in data:
        return data
    return re.sub(_ESCAPE, b"", data)
