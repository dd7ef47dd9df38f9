"""Fail-fast within a group of steps: GitHub's ``strategy.fail-fast`` for a job's matrix entries.

A step's ``fail_fast_group`` names its group (a workflow job's id). When one
of them fails (and may not fail), the executor cancels the others that are
running and skips those not started, with the failed one named in the
reason; steps of other groups go on. The executor's own ``fail_fast``
(``sauci run --fail-fast``) still stops the whole build.
"""

from __future__ import annotations

from sauci.core.models import Status, Step, StepRun

__all__ = ["FailFastGroups"]


class FailFastGroups:
    """The groups stopped so far in one build, and why."""

    def __init__(self) -> None:
        self._stopped: dict[str, str] = {}

    def ended(self, step: Step, final: StepRun) -> str | None:
        """The reason the rest of ``step``'s group stops, when its end stops it; else None."""
        group = step.fail_fast_group
        if group is None or group in self._stopped or final.allow_failure:
            return None
        if final.status not in (Status.FAILED, Status.ERRORED):
            return None
        reason = f"skipped: fail-fast after {final.name!r} {final.status.value}"
        self._stopped[group] = reason
        return reason

    def stopped(self, step: Step) -> str | None:
        """Why ``step`` does not start (its group stopped), or None."""
        if step.fail_fast_group is None:
            return None
        return self._stopped.get(step.fail_fast_group)
