"""Reading a step's log for the pages: by byte range, never whole.

A log is read from its file on disk when the step's ``log_path`` is on this
machine (where ``sauci serve`` writes it), else from the store's chunks by
offset. Line numbers of a range come from counting newlines before it, with
per-4-MiB checkpoints cached per log, so the second look at a 100 MB log
counts only what is new.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
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
        from sauci.core.logfile import check_log_file

        check = check_log_file(store, step)
        self.path = check.path
        # What the page must say about the file on disk (it no longer matches).
        self.problem = check.problem
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

    def search(
        self,
        needle: str,
        after: int = 0,
        *,
        limit: int = 200,
        max_bytes: int = 64 * 1024 * 1024,
        piece: int = 1 << 20,
    ) -> dict[str, Any]:
        """Lines containing ``needle`` (plain text, case-insensitive) from byte ``after`` on.

        Reads the log ``piece`` bytes at a time and counts lines as it goes,
        so memory stays bounded whatever the log's size; stops after
        ``limit`` matches or ``max_bytes`` scanned and gives ``next``, the
        line start to continue from (None at the end of the log). A line
        longer than ``piece`` is searched in fragments (a match across a
        fragment boundary is missed).
        """
        size = self.size()
        pos = self.line_start_after(max(0, min(after, size)))
        line_no = self.lines_before(pos) + 1
        line_start = pos  # where the line being scanned begins
        piece = max(1, min(piece, max_bytes))
        stop = min(size, pos + max_bytes)
        lowered = needle.lower()
        ascii_needle = lowered.encode() if lowered.isascii() else None
        matches: list[dict[str, Any]] = []
        buf = b""
        buf_off = pos
        next_offset: int | None = None

        def add(chunk: bytes, ls: int, le: int, number: int, offset: int) -> bool:
            if matches and matches[-1]["line"] == number:
                return False
            text = chunk[ls : min(le, ls + 2000)].decode("utf-8", "replace")
            matches.append(
                {
                    "line": number,
                    "offset": offset,
                    "html": escape(strip_ansi(text.replace("\r", ""))),
                }
            )
            return len(matches) >= limit

        while pos < stop:
            data = self.read(pos, min(piece, stop - pos))
            if not data:
                break
            pos += len(data)
            buf += data
            cut = buf.rfind(b"\n")
            if pos >= size:
                chunk, rest = buf, b""  # the last piece: its last line may lack "\n"
            elif cut >= 0:
                chunk, rest = buf[: cut + 1], buf[cut + 1 :]
            elif len(buf) >= piece:
                chunk, rest = buf, b""  # a fragment of a very long line
            else:
                continue
            full = False
            counted = 0
            if ascii_needle is not None:
                hay = chunk.lower()
                hit = hay.find(ascii_needle)
                while hit >= 0:
                    ls = chunk.rfind(b"\n", 0, hit) + 1
                    line_no += chunk.count(b"\n", counted, ls)
                    counted = ls
                    if ls:
                        line_start = buf_off + ls
                    le = chunk.find(b"\n", hit)
                    le = len(chunk) if le < 0 else le
                    if add(chunk, ls, le, line_no, line_start):
                        full = True
                        next_offset = buf_off + le + 1
                        break
                    hit = hay.find(ascii_needle, le + 1) if le < len(chunk) else -1
            else:
                ls = 0
                while ls < len(chunk):
                    le = chunk.find(b"\n", ls)
                    le = len(chunk) if le < 0 else le
                    if lowered in chunk[ls:le].decode("utf-8", "replace").lower():
                        line_no += chunk.count(b"\n", counted, ls)
                        counted = ls
                        if ls:
                            line_start = buf_off + ls
                        if add(chunk, ls, le, line_no, line_start):
                            full = True
                            next_offset = buf_off + le + 1
                            break
                    ls = le + 1
            if full:
                break
            line_no += chunk.count(b"\n", counted)
            last = chunk.rfind(b"\n")
            if last >= 0:
                line_start = buf_off + last + 1
            buf_off += len(chunk)
            buf = rest
        if next_offset is None and buf_off < size:
            next_offset = buf_off
        if next_offset is not None and next_offset >= size:
            next_offset = None
        return {"matches": matches, "next": next_offset, "scanned_to": next_offset or size}


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
    opened: list[int] = []  # where in ``out`` each open section starts
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
            opened.append(len(out))
            out.append(
                f'<details class="grp"><summary><span class="ln" id="L{n}" data-o="{o}">'
                f'<a class="n" href="#L{n}" tabindex="-1">{n}</a>'
                f'<span class="tx gt">{title}</span></span></summary>'
            )
            depth += 1
        else:
            # An end marker whose section began before ``data`` is marked
            # data-end, for the page to close that section when it joins ranges.
            orphan = ' data-end=""' if marker is not None and not depth else ""
            out.append(
                f'<div class="ln" id="L{n}" data-o="{o}"{orphan}><a class="n" href="#L{n}" '
                f'tabindex="-1">{n}</a><span class="tx">{html}</span></div>'
            )
            if marker is not None and depth:
                out.append("</details>")
                opened.pop()
                depth -= 1
        n += 1
        o += len(raw) + 1
    for i in opened:  # still open at the end of ``data``: continued by later lines
        out[i] = out[i].replace('<details class="grp">', '<details class="grp" data-open="">', 1)
    out.append("</details>" * depth)
    out.append("</div>")
    return "".join(out)


def sse(event: str, payload: dict[str, Any], event_id: int | None = None) -> bytes:
    """One server-sent event; JSON keeps the data on one line."""
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(payload)}\n\n".encode()
