"""Live display of a running build: steps starting and ending, output streamed.

A step's output is shown up to ``head`` bytes; after that only its last
``tail`` bytes are kept, and shown when the step ends, after a note of how
much was not shown and where the full log is: a flood of gigabytes costs
the terminal a few megabytes. The bytes come from the step's LogSink, so
they are already masked and capped.
"""

from __future__ import annotations

import sys
import threading
from typing import BinaryIO

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
    ) -> None:
        self.style = style
        self.quiet = quiet
        self.out = out or sys.stdout.buffer
        self.head = head
        self.tail = tail
        self._lock = threading.Lock()
        self._partial: dict[str, bytes] = {}
        self._prefix: dict[str, bytes] = {}
        self._shown: dict[str, _Shown] = {}

    def _emit(self, text: str) -> None:
        with self._lock:
            self.out.write(text.encode("utf-8", "replace") + b"\n")
            self.out.flush()

    def step_started(self, build: Build, step: StepRun) -> None:
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
        chunk = b"".join(prefix + line + b"\n" for line in lines)
        with self._lock:
            self.out.write(chunk)
            self.out.flush()

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
        state = self._shown.pop(step.name, None)
        if not self.quiet:
            if state is not None and state.hidden:
                self._show_tail(step.name, state)
            rest = self._partial.pop(step.name, b"")
            if rest:
                with self._lock:
                    self.out.write(self._prefix.get(step.name, b"") + rest + b"\n")
        took = duration(step.duration) if step.started_at is not None else ""
        reason = f" {self.style.dim('— ' + step.reason)}" if step.reason else ""
        badge = self.style.status(
            step.status, allowed=step.allow_failure and step.status is Status.FAILED
        )
        self._emit(f"{badge} {self.style.bold(step.name)} {took}{reason}".rstrip())
