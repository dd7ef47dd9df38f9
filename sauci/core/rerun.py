"""Which results of an earlier build a "rerun failed" build keeps.

A reused step's result is kept, but not what it left in its workspace: the
new build has a fresh checkout. So each step that did not pass runs again
with every step it needs (:func:`sauci.core.dag.rerun_closure`); the steps
outside that closure that passed are reused. docs/cli.md says why no
snapshot of the workspace is kept instead.
"""

from __future__ import annotations

from collections.abc import Iterable

from sauci.core.dag import rerun_closure
from sauci.core.models import Pipeline, Status, StepRun

__all__ = ["reusable_steps"]


def reusable_steps(pipeline: Pipeline, earlier: Iterable[StepRun]) -> dict[str, StepRun]:
    """The passed steps of ``earlier`` that the rerun of ``pipeline`` keeps, by name.

    A step of ``pipeline`` that is not among ``earlier``'s passed steps (failed,
    skipped, errored, cancelled, or new since) runs again, and so does every
    step it needs.
    """
    passed = {run.name: run for run in earlier if run.status is Status.PASSED}
    again = rerun_closure(pipeline, (s.name for s in pipeline.steps if s.name not in passed))
    return {name: run for name, run in passed.items() if name not in again}
