"""Live display of a running build: steps starting and ending, output streamed.

A step's output is shown up to ``head`` bytes; after that only its last
``tail`` bytes are kept, and shown when the step ends, after a note of how
much was not shown and where the full log is: a flood of gigabytes costs
the terminal a few megabytes. The bytes come from the step's LogSink, so
they are already masked and capped.

Without colour (``NO_COLOR``, a pipe or a file, ``--color never``) the steps'
own escape sequences are taken out of what is shown (the logs keep them). On a
terminal, while :meth:`LiveDisplay.running`, a status line under the output
names each running step and how long it has run, redrawn about once a second
while no output comes and wiped before any is printed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import threading
import time
from collections.abc import Iterator
from typing import BinaryIO

from sauci.cli._ansi import strip_ansi
from sauci.cli._render import Style, duration
from sauci.core.executor import BuildObserver
from sauci.core.logsink import format_size
from sauci.core.models import Build, Status, StepRun

__all__ = ["HEAD_BYTES", "TAIL_BYTES", "LiveDisplay"]

HEAD_BYTES = 1024 * 1024  # of each step's output, shown as it comes
TAIL_BYTES = 64 * 1024  # of the rest, shown when the step ends


class _Shown:
    """What the terminal got of one step's output."""

    __slots__ = ("hidden", "log_path", "shown", "tail")

    def __init__(self, log_path: str | None) -> None:
        self.log_path = log_path
        self.shown = 0  # bytes of output shown live (the head)
        self.hidden = 0  # bytes after the head
        self.tail = bytearray()  # the last of them (at most 2 * tail bytes)


class LiveDisplay(BuildObserver):
    """Prints step events and (unless quiet) each output line prefixed by its step.

    Called from the executor's worker threads, so every write holds a lock.
    """

    def __init__(
        self,
        style: Style,
        *,
        quiet: bool = False,
        out: BinaryIO | None = None,
        head: int = HEAD_BYTES,
        tail: int = TAIL_BYTES,
        live: bool | None = None,
        tick: float = 1.0,
    ) -> None:
        """``live``: draw the status line (default: when ``out`` is a terminal
        that is not "dumb"); ``tick``: seconds between its redraws."""
        self.style = style
        self.quiet = quiet
        self.out = out or sys.stdout.buffer
        self.head = head
        self.tail = tail
        self.live = _is_terminal(self.out) if live is None else live
        self.tick = tick
        self._plain = not style.enabled  # steps' escape sequences are taken out
        self._lock = threading.Lock()
        self._partial: dict[str, bytes] = {}
        self._prefix: dict[str, bytes] = {}
        self._shown: dict[str, _Shown] = {}
        self._running: dict[str, float] = {}  # step name: when it started (monotonic)
        self._status_shown = False
        self._last_write = 0.0

    def _write(self, data: bytes) -> None:
        """Write under the lock, the status line wiped first."""
        with self._lock:
            if self._status_shown:
                data = b"\r\x1b[K" + data
                self._status_shown = False
            self.out.write(data)
            self.out.flush()
            self._last_write = time.monotonic()

    def _emit(self, text: str) -> None:
        self._write(text.encode("utf-8", "replace") + b"\n")

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        """While the build runs: the status line on a terminal (nothing otherwise)."""
        if not self.live:
            yield
            return
        stop = threading.Event()
        ticker = threading.Thread(target=self._tick, args=(stop,), name="sauci-live", daemon=True)
        ticker.start()
        try:
            yield
        finally:
            stop.set()
            ticker.join()
            with self._lock:
                if self._status_shown:
                    self.out.write(b"\r\x1b[K")
                    self.out.flush()
                    self._status_shown = False

    def _tick(self, stop: threading.Event) -> None:
        while not stop.wait(self.tick):
            now = time.monotonic()
            with self._lock:
                if not self._running or now - self._last_write < self.tick * 0.9:
                    continue  # output is coming: it shows the build moving
                line = self.status_line(now)
                self.out.write(b"\r\x1b[K" + line.encode("utf-8", "replace"))
                self.out.flush()
                self._status_shown = True

    def status_line(self, now: float | None = None) -> str:
        """The running steps and their times, cut to the terminal's width."""
        now = time.monotonic() if now is None else now
        parts = [f"{name} {_elapsed(now - started)}" for name, started in self._running.items()]
        text = " · ".join(parts)
        room = shutil.get_terminal_size((80, 24)).columns - 3  # the icon, a space, the cursor
        if len(text) > room:
            text = text[: max(room - 1, 0)] + "…"
        return f"{self.style.status(Status.RUNNING, word=False)} {text}"

    def step_started(self, build: Build, step: StepRun) -> None:
        with self._lock:
            self._running[step.name] = time.monotonic()
        self._prefix[step.name] = self.style.dim(f"{step.name} │ ").encode()
        self._shown[step.name] = _Shown(step.log_path)
        self._emit(f"{self.style.status(Status.RUNNING, word=False)} {self.style.bold(step.name)}")

    def step_output(self, build: Build, step: str, data: bytes) -> None:
        if self.quiet or not data:
            return
        state = self._shown.get(step)
        if state is None:
            state = self._shown[step] = _Shown(None)
        room = self.head - state.shown
        if room > 0:
            show, data = (data, b"") if len(data) <= room else (data[:room], data[room:])
            state.shown += len(show)
            self._show_lines(step, show, end=False)
        if not data:
            return
        if not state.hidden:  # the head is full: end its cut line, and say so once
            self._show_lines(step, b"", end=True)
            where = f" (full log: {state.log_path})" if state.log_path else ""
            self._emit(
                self._prefix.get(step, b"").decode()
                + self.style.dim(
                    f"... more than {format_size(self.head)} of output; "
                    f"the last {format_size(self.tail)} are shown when the step ends{where}"
                )
            )
        state.hidden += len(data)
        state.tail += data
        if len(state.tail) > 2 * self.tail:  # trimmed now and then, not at every write
            del state.tail[: len(state.tail) - self.tail - 1]  # and the byte before

    def _show_lines(self, step: str, data: bytes, *, end: bool) -> None:
        """Show ``data`` line by line; with ``end``, also its last, unfinished line."""
        buffered = self._partial.get(step, b"") + data
        lines = buffered.split(b"\n")
        self._partial[step] = lines.pop()
        if end or len(self._partial[step]) > 65536:  # a huge line without newline: show it
            if self._partial[step]:
                lines.append(self._partial[step])
            self._partial[step] = b""
        if not lines:
            return
        prefix = self._prefix.get(step, b"")
        if self._plain:
            lines = [strip_ansi(line) for line in lines]
        self._write(b"".join(prefix + line + b"\n" for line in lines))

    def _show_tail(self, step: str, state: _Shown) -> None:
        """After a flood: a note of what was not shown, then the last lines."""
        # The last ``tail`` bytes, from the start of a line when one starts
        # in them (the byte before them tells whether the first one does).
        tail = bytes(state.tail[-self.tail - 1 :])
        if state.hidden > self.tail:
            newline = tail.find(b"\n", 0, len(tail) - 1)
            tail = tail[newline + 1 :] if newline >= 0 else tail[1:]
            where = f"; full log: {state.log_path}" if state.log_path else ""
            not_shown = format_size(state.hidden - len(tail))
            self._emit(
                self._prefix.get(step, b"").decode()
                + self.style.dim(f"... {not_shown} not shown{where}")
            )
        self._show_lines(step, tail, end=True)

    def step_finished(self, build: Build, step: StepRun) -> None:
        with self._lock:
            self._running.pop(step.name, None)
        state = self._shown.pop(step.name, None)
        if not self.quiet:
            if state is not None and state.hidden:
                self._show_tail(step.name, state)
            rest = self._partial.pop(step.name, b"")
            if rest:
                if self._plain:
                    rest = strip_ansi(rest)
                self._write(self._prefix.get(step.name, b"") + rest + b"\n")
        took = duration(step.duration) if step.started_at is not None else ""
        reason = f" {self.style.dim('— ' + step.reason)}" if step.reason else ""
        badge = self.style.status(
            step.status, allowed=step.allow_failure and step.status is Status.FAILED
        )
        self._emit(f"{badge} {self.style.bold(step.name)} {took}{reason}".rstrip())


def _elapsed(seconds: float) -> str:
    whole = int(seconds + 0.5)  # drawn about once a second: 0.97 s reads "1s"
    return f"{whole}s" if whole < 60 else duration(whole)


def _is_terminal(out: BinaryIO) -> bool:
    try:
        return out.isatty() and os.environ.get("TERM", "") != "dumb"
    except (AttributeError, ValueError):
        return False
