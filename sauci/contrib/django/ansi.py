"""ANSI terminal output to escaped HTML: colours as CSS classes, everything else as text.

The output is safe to put in a page as is: every character of the log goes
through :func:`escape` and the only markup added is ``<span class=...>`` with
class names computed from integers, never from the text (no ``style``
attributes: 256-colour and 24-bit colours map to sauci.css's classes
``f0``-``f255`` / ``g0``-``g255``, so the pages need no 'unsafe-inline' styles).
Lines without an escape character take a fast path (one ``in`` test, one
escape), since most lines of most logs have none.
"""

from __future__ import annotations

import re

__all__ = [
    "AnsiRenderer",
    "ansi_to_html",
    "color_256",
    "escape",
    "linked",
    "nearest_256",
    "strip_ansi",
]

# CSI (ESC [ params final), OSC (ESC ] ... BEL or ESC \), and any other ESC + one char.
_ESCAPE = re.compile(r"\x1b\[([0-9;:?]*)[ -/]*([@-~])|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b.?")
# C0 controls other than tab and ESC, and DEL: dropped (a terminal would not show them).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1a\x1c-\x1f\x7f]")
_HTML = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#x27;"})

_CUBE = (0, 95, 135, 175, 215, 255)
_MAX_DIGITS = 9


def escape(text: str) -> str:
    """HTML-escape ``& < > " '``."""
    return text.translate(_HTML)


# http and https only (never javascript: or data:); quotes, spaces and < > end a URL.
_URL = re.compile(r"https?://[^\s<>\"'`\x00-\x1f\x7f]+", re.I)
_URL_TRAIL = ".,;:!?)]}"


def linked(text: str) -> str:
    """``text`` HTML-escaped, with each http(s) URL in it a link (escaped too)."""
    if "://" not in text:
        return escape(text)
    out: list[str] = []
    pos = 0
    for m in _URL.finditer(text):
        url = m.group(0).rstrip(_URL_TRAIL)
        if not url.split("://", 1)[1]:
            continue
        out.append(escape(text[pos : m.start()]))
        href = escape(url)
        out.append(f'<a href="{href}" rel="nofollow noopener noreferrer">{href}</a>')
        pos = m.start() + len(url)
    out.append(escape(text[pos:]))
    return "".join(out)


def strip_ansi(text: str) -> str:
    """``text`` without escape sequences or control characters."""
    return _CONTROL.sub("", _ESCAPE.sub("", text))


def color_256(n: int) -> tuple[int, int, int]:
    """The RGB of xterm colour ``n`` from 16 to 255 (the 6x6x6 cube, then 24 greys)."""
    if n < 232:
        n -= 16
        return _CUBE[n // 36], _CUBE[(n // 6) % 6], _CUBE[n % 6]
    grey = 8 + (n - 232) * 10
    return grey, grey, grey


def _nearest_cube(v: int) -> int:
    return min(range(6), key=lambda i: abs(_CUBE[i] - v))


def nearest_256(r: int, g: int, b: int) -> int:
    """The xterm colour (16-255) nearest to a 24-bit colour.

    24-bit colours are shown through the 256 colour classes of sauci.css,
    not inline ``style`` attributes, so the pages' Content-Security-Policy
    needs no 'unsafe-inline'.
    """
    cube = 16 + 36 * _nearest_cube(r) + 6 * _nearest_cube(g) + _nearest_cube(b)
    level = min(23, max(0, round(((r + g + b) / 3 - 8) / 10)))
    grey = 232 + level

    def distance(n: int) -> int:
        cr, cg, cb = color_256(n)
        return (cr - r) ** 2 + (cg - g) ** 2 + (cb - b) ** 2

    return min((cube, grey), key=distance)


# SGR codes that switch a style class on, and those that switch classes off.
_SGR_ON = {1: "b", 2: "d", 3: "i", 4: "u", 7: "r", 9: "s"}
_SGR_OFF = {22: ("b", "d"), 23: ("i",), 24: ("u",), 27: ("r",), 29: ("s",)}
# The 16 basic colours, as their index in the 256-colour palette: 30-37 and
# 90-97 (bright) set the foreground; 10 more (40-47, 100-107), the background.
_SGR_FG = {**{30 + k: k for k in range(8)}, **{90 + k: 8 + k for k in range(8)}}
_SGR_BG = {code + 10: k for code, k in _SGR_FG.items()}


class AnsiRenderer:
    """Turns lines of terminal output into HTML, carrying SGR state from line to line.

    Each rendered line is self-contained: open spans are closed at its end
    and reopened at the start of the next, so lines can be wrapped in their
    own elements.
    """

    __slots__ = ("_bg", "_classes", "_fg", "_span")

    def __init__(self) -> None:
        self._fg: str | None = None  # "f1" class or "#rrggbb"
        self._bg: str | None = None
        self._classes: set[str] = set()  # b, d, i, u, s, r
        self._span = ""  # the opening tag for the current state ("" when plain)

    def line(self, text: str) -> str:
        """One line (no newline in it) as HTML."""
        if "\r" in text:
            # A carriage return rewinds the line (progress bars): keep what was
            # written last, as a terminal would show it (mostly).
            text = text.rstrip("\r")
            cut = text.rfind("\r")
            if cut >= 0:
                head = text[:cut]
                text = text[cut + 1 :]
                # Colours set before the \r still apply to what follows it.
                for m in _ESCAPE.finditer(head):
                    if m.group(2) == "m":
                        self._sgr(m.group(1))
        if "\x1b" not in text:
            if _CONTROL.search(text):
                text = _CONTROL.sub("", text)
            body = linked(text)
            return f"{self._span}{body}</span>" if self._span and body else body
        out: list[str] = []
        pos = 0
        span = self._span
        if span:
            out.append(span)
        for m in _ESCAPE.finditer(text):
            if m.start() > pos:
                out.append(linked(_CONTROL.sub("", text[pos : m.start()])))
            pos = m.end()
            if m.group(2) == "m":
                self._sgr(m.group(1))
                if self._span != span:
                    if span:
                        out.append("</span>")
                    span = self._span
                    if span:
                        out.append(span)
        if pos < len(text):
            out.append(linked(_CONTROL.sub("", text[pos:])))
        if span:
            out.append("</span>")
        return "".join(out)

    def _sgr(self, params: str) -> None:
        # A code of more digits than any means is ignored (-1 matches nothing):
        # int() refuses more than 4,300 digits, and a log is the pusher's text.
        codes = [
            (int(p) if len(p) <= _MAX_DIGITS else -1) if p.isdigit() else 0
            for p in params.replace(":", ";").split(";")
        ]
        i, n = 0, len(codes)
        classes = self._classes
        while i < n:
            c = codes[i]
            i += 1
            if c == 0:
                self._fg = self._bg = None
                classes.clear()
            elif c in _SGR_ON:
                classes.add(_SGR_ON[c])
            elif c in _SGR_OFF:
                classes.difference_update(_SGR_OFF[c])
            elif c in _SGR_FG:
                self._fg = f"f{_SGR_FG[c]}"
            elif c in _SGR_BG:
                self._bg = f"g{_SGR_BG[c]}"
            elif c == 39:
                self._fg = None
            elif c == 49:
                self._bg = None
            elif c in (38, 48) and i < n:
                mode = codes[i]
                color: str | None = None
                if mode == 5 and i + 1 < n:
                    k = codes[i + 1] % 256
                    color = f"f{k}" if c == 38 else f"g{k}"
                    i += 2
                elif mode == 2 and i + 3 < n:
                    r, g, b = (min(v, 255) for v in codes[i + 1 : i + 4])
                    k = nearest_256(r, g, b)
                    color = f"f{k}" if c == 38 else f"g{k}"
                    i += 4
                else:
                    i = n
                if c == 38:
                    self._fg = color
                else:
                    self._bg = color
        self._span = self._open()

    def _open(self) -> str:
        names = sorted(self._classes)
        names += [value for value in (self._fg, self._bg) if value is not None]
        if not names:
            return ""
        return f'<span class="{" ".join(names)}">'


def ansi_to_html(text: str) -> str:
    """A whole text (lines separated by ``\\n``) as HTML, newlines kept."""
    renderer = AnsiRenderer()
    return "\n".join(renderer.line(line) for line in text.split("\n"))
