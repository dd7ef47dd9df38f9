"""Live display of a running build: steps starting and ending, output streamed."""

from __future__ import annotations

import sys
import threading
from typing import BinaryIO

from sauci.cli._render import Style, duration
from sauci.core.executor import BuildObserver
from sauci.core.models import Build, Status, StepRun

__all__ = ["LiveDisplay"]


class LiveDisplay(BuildObserver):
    """Prints step events and (unless quiet) each output line prefixed by its step.

    Called from the executor's worker threads, so every write holds a lock.
    """

    def __init__(self, style: Style, *, quiet: bool = False, out: BinaryIO | None = None) -> None:
        self.style = style
        self.quiet = quiet
        self.out = out or sys.stdout.buffer
        self._lock = threading.Lock()
        self._partial: dict[str, bytes] = {}
        self._prefix: dict[str, bytes] = {}

    def _emit(self, text: str) -> None:
        with self._lock:
            self.out.write(text.encode("utf-8", "replace") + b"\n")
            self.out.flush()

    def step_started(self, build: Build, step: StepRun) -> None:
        self._prefix[step.name] = self.style.dim(f"{step.name} │ ").encode()
        self._emit(f"{self.style.status(Status.RUNNING, word=False)} {self.style.bold(step.name)}")

    def step_output(self, build: Build, step: str, data: bytes) -> None:
        if self.quiet or not data:
            return
        buffered = self._partial.get(step, b"") + data
        lines = buffered.split(b"\n")
        self._partial[step] = lines.pop()
        if not lines:
            if len(self._partial[step]) > 65536:  # a huge line without newline: show it anyway
                lines, self._partial[step] = [self._partial[step]], b""
            else:
                return
        prefix = self._prefix.get(step, b"")
        chunk = b"".join(prefix + line + b"\n" for line in lines)
        with self._lock:
            self.out.write(chunk)
            self.out.flush()

    def step_finished(self, build: Build, step: StepRun) -> None:
        rest = self._partial.pop(step.name, b"")
        if rest and not self.quiet:
            with self._lock:
                self.out.write(self._prefix.get(step.name, b"") + rest + b"\n")
        took = duration(step.duration) if step.started_at is not None else ""
        reason = f" {self.style.dim('— ' + step.reason)}" if step.reason else ""
        badge = self.style.status(
            step.status, allowed=step.allow_failure and step.status is Status.FAILED
        )
        self._emit(f"{badge} {self.style.bold(step.name)} {took}{reason}".rstrip())
