"""Reading a step's log for the pages: by byte range, never whole.

A log is read from its file on disk when the step's ``log_path`` is on this
machine (where ``sauci serve`` writes it), else from the store's chunks by
offset. Line numbers of a range come from counting newlines before it, with
per-4-MiB checkpoints cached per log, so the second look at a 100 MB log
counts only what is new.
"""

from __future__ import annotations

import json
import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

from sauci.contrib.django.ansi import AnsiRenderer, escape, strip_ansi
from sauci.core.models import StepRun
from sauci.typing import Store

__all__ = ["LogSource", "render_lines"]

BLOCK = 4 * 1024 * 1024
BLOCK_LINES = 200
_MAX_CACHED = 256
_checkpoints: OrderedDict[Any, list[int]] = OrderedDict()
_cache_lock = threading.Lock()


class LogSource:
    """One step's log: its size, byte ranges, and line numbers."""

    def __init__(self, store: Store, step: StepRun) -> None:
        self.store = store
        self.build_id = step.build_id
        self.step = step.name
        path = step.log_path
        self.path = Path(path) if path and os.path.isfile(path) else None
        self.key: Any = (
            str(self.path) if self.path else ("store", repr(store), self.build_id, self.step)
        )

    def size(self) -> int:
        if self.path is not None:
            try:
                return self.path.stat().st_size
            except OSError:
                return 0
        return self.store.log_size(self.build_id, self.step)

    def read(self, offset: int, limit: int) -> bytes:
        if limit <= 0:
            return b""
        if self.path is not None:
            try:
                with open(self.path, "rb") as fh:
                    fh.seek(offset)
                    return fh.read(limit)
            except OSError:
                return b""
        return self.store.read_log(self.build_id, self.step, offset, limit)

    def lines_before(self, offset: int) -> int:
        """How many newlines the log has before byte ``offset``."""
        with _cache_lock:
            points = _checkpoints.get(self.key)
            if points is None:
                points = [0]  # points[k]: newlines in the first k blocks
                _checkpoints[self.key] = points
                while len(_checkpoints) > _MAX_CACHED:
                    _checkpoints.popitem(last=False)
            else:
                _checkpoints.move_to_end(self.key)
            points = list(points)
        full = offset // BLOCK
        while len(points) <= full:
            k = len(points) - 1
            data = self.read(k * BLOCK, BLOCK)
            if len(data) < BLOCK:  # the log is shorter than it was: do not cache
                break
            points.append(points[-1] + data.count(b"\n"))
        with _cache_lock:
            if len(points) > len(_checkpoints.get(self.key, ())):
                _checkpoints[self.key] = points
        k = min(full, len(points) - 1)
        rest = self.read(k * BLOCK, offset - k * BLOCK)
        return points[k] + rest.count(b"\n")

    def line_start_after(self, offset: int) -> int:
        """The first line start at or after ``offset`` (``offset`` itself at 0)."""
        if offset <= 0:
            return 0
        probe = self.read(offset - 1, 64 * 1024)
        cut = probe.find(b"\n")
        return offset if cut < 0 else offset - 1 + cut + 1

    def range_html(self, start: int, end: int) -> tuple[str, int]:
        """HTML of lines [start, end) and the number of the first line."""
        data = self.read(start, end - start)
        first = self.lines_before(start) + 1
        return render_lines(data, first, start), first


_GROUP_PREFIXES = ("::group::", "##[group]")
_END_PREFIXES = ("::endgroup::", "##[endgroup]")


def _section(raw: str) -> tuple[str, str] | None:
    """("start", title) / ("end", "") for a section marker line, else None."""
    plain = strip_ansi(raw.replace("\r", "")) if "\x1b" in raw or "\r" in raw else raw
    if plain.startswith(_GROUP_PREFIXES):
        return "start", plain.split("]", 1)[1] if plain.startswith("##") else plain[9:]
    if plain.startswith(_END_PREFIXES):
        return "end", ""
    if "section_start:" in raw:  # GitLab: section_start:<ts>:<name>\r\e[0K<title>
        visible = raw.rsplit("\r", 1)[-1]
        name = raw.split("section_start:", 1)[1].split("\r", 1)[0].split(":", 1)[-1]
        title = strip_ansi(visible) if "\r" in raw else name
        return "start", title or name
    if "section_end:" in raw:
        return "end", ""
    return None


def render_lines(data: bytes, first_line: int, offset: int) -> str:
    """Log bytes as HTML: one ``div.ln`` per line with an anchor, sections as ``details``.

    ``offset`` is the byte offset of ``data`` in the log (kept per line as
    ``data-o`` for the timestamps), ``first_line`` the number of its first line.
    A trailing newline does not start an empty line.
    """
    if not data:
        return ""
    raw_lines = data.split(b"\n")
    if raw_lines[-1] == b"":
        raw_lines.pop()
    renderer = AnsiRenderer()
    out: list[str] = []
    depth = 0
    n = first_line
    o = offset
    in_block = 0
    out.append('<div class="blk">')
    for raw in raw_lines:
        if in_block >= BLOCK_LINES and not depth:
            # Blocks let the browser skip layout of what is off screen
            # (content-visibility), which keeps the first paint fast.
            out.append('</div><div class="blk">')
            in_block = 0
        in_block += 1
        text = raw.decode("utf-8", "replace")
        marker = _section(text) if ("group" in text or "section_" in text) else None
        html = renderer.line(text)
        if marker is not None and marker[0] == "start":
            title = escape(marker[1])
            out.append(
                f'<details class="grp"><summary><span class="ln" id="L{n}" data-o="{o}">'
                f'<a class="n" href="#L{n}" tabindex="-1">{n}</a>'
                f'<span class="tx gt">{title}</span></span></summary>'
            )
            depth += 1
        else:
            out.append(
                f'<div class="ln" id="L{n}" data-o="{o}"><a class="n" href="#L{n}" tabindex="-1">'
                f'{n}</a><span class="tx">{html}</span></div>'
            )
            if marker is not None and depth:
                out.append("</details>")
                depth -= 1
        n += 1
        o += len(raw) + 1
    out.append("</details>" * depth)
    out.append("</div>")
    return "".join(out)


def sse(event: str, payload: dict[str, Any], event_id: int | None = None) -> bytes:
    """One server-sent event; JSON keeps the data on one line."""
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(payload)}\n\n".encode()
