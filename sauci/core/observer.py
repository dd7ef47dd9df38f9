"""What a build shows while it runs: hooks for a live display (the CLI) and reporting."""

from __future__ import annotations

from sauci.core.models import Build, StepRun

__all__ = ["BuildObserver"]


class BuildObserver:
    """Hooks for live display (the CLI) and reporting; every method is optional."""

    def step_started(self, build: Build, step: StepRun) -> None: ...

    def step_output(self, build: Build, step: str, data: bytes) -> None: ...

    def step_finished(self, build: Build, step: StepRun) -> None: ...
