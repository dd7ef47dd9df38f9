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

__all__ = ["RERUN_STEP_PARAM", "reusable_steps"]

# The build parameter that makes a rerun build "rerun this one step" (set by
# Scheduler.rerun(step=...); the steps see it in their environment too).
RERUN_STEP_PARAM = "SAUCI_RERUN_STEP"


def reusable_steps(
    pipeline: Pipeline, earlier: Iterable[StepRun], *, step: str | None = None
) -> dict[str, StepRun]:
    """The results of ``earlier`` that the rerun of ``pipeline`` keeps, by name.

    Rerun failed (no ``step``): a step of ``pipeline`` that is not among
    ``earlier``'s passed steps (failed, skipped, errored, cancelled, or new
    since) runs again, and so does every step it needs; the passed ones are kept.

    Rerun one ``step``: it runs again with every step it needs; every other
    step that passed or failed keeps its result, the rest (skipped, errored,
    cancelled, new) run. A ``step`` no longer in ``pipeline`` reruns the failed
    steps instead.
    """
    earlier = list(earlier)
    # A step that added steps at run time (sauci.core.expansion) always runs
    # again, with what it needs, so that it adds them again.
    expands = [s.name for s in pipeline.steps if s.expansion is not None]
    if step is not None and any(s.name == step for s in pipeline.steps):
        again = rerun_closure(pipeline, [step, *expands])
        kept = (Status.PASSED, Status.FAILED)
        return {r.name: r for r in earlier if r.status in kept and r.name not in again}
    passed = {
        run.name: run for run in earlier if run.status is Status.PASSED and run.name not in expands
    }
    again = rerun_closure(pipeline, (s.name for s in pipeline.steps if s.name not in passed))
    return {name: run for name, run in passed.items() if name not in again}
