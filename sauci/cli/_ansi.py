"""Terminal escape sequences taken out of step output that is not shown on a
colour terminal (``NO_COLOR``, a pipe, a file, ``--color never``)."""

from __future__ import annotations

import re

__all__ = ["LogForTerminal", "strip_ansi"]

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


# What a log printed for the operator may not hold: the escapes above but the
# colours (SGR, kept in group 1 where colour is on), C0 controls but tab,
# newline, carriage return and ESC, DEL, and the C1 controls in their UTF-8
# form (U+009B is a CSI, U+009D an OSC to a terminal that reads C1).
_UNSHOWN = (
    rb"(\x1b\[[0-9;:]*m)|"
    + _ESCAPE
    + rb"|[\x00-\x08\x0b\x0c\x0e-\x1a\x1c-\x1f\x7f]|\xc2[\x80-\x9f]"
)
_HELD = 64 * 1024  # most of a line kept back until its end, so no escape is cut in two


class LogForTerminal:
    """A step's log, chunk by chunk, as the operator's terminal may show it.

    A log is written by whoever can push: raw, its escapes would drive the
    terminal of whoever reads it with ``sauci logs``: set the clipboard
    (OSC 52) for the next paste, set the title, clear the screen or move the
    cursor over earlier lines, query the terminal so that it types a reply.
    Colours are kept where ``colour`` is on; nothing else is. Lines are
    cleaned whole (an escape is never cut between two chunks): what follows
    the last newline waits for the next chunk, up to 64 KiB of it.
    """

    def __init__(self, *, colour: bool) -> None:
        self._colour = colour
        self._held = b""

    def feed(self, data: bytes) -> bytes:
        """What of ``data`` (after what was held) can be shown now."""
        data = self._held + data
        cut = data.rfind(b"\n") + 1
        if len(data) - cut > _HELD:
            cut = len(data)
        self._held = data[cut:]
        return self._clean(data[:cut])

    def flush(self) -> bytes:
        """What is held back: the end of the log, without a newline."""
        data, self._held = self._held, b""
        return self._clean(data)

    def _clean(self, data: bytes) -> bytes:
        if not data:
            return data
        keep = (lambda m: m.group(1) or b"") if self._colour else b""
        return re.sub(_UNSHOWN, keep, data)
