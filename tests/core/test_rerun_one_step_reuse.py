"""Which results a "rerun one step" build keeps: the step and every step it
needs run again; the other steps keep their result if it passed or failed;
skipped, errored and cancelled ones run."""

from __future__ import annotations

from sauci.core.models import Pipeline, Status, Step, StepRun
from sauci.core.rerun import reusable_steps


def _pipeline(*steps: tuple[str, tuple[str, ...]]) -> Pipeline:
    return Pipeline(steps=[Step(name=n, run="true", needs=needs) for n, needs in steps])


PIPELINE = _pipeline(
    ("install", ()),
    ("test", ("install",)),
    ("deploy", ("test",)),
    ("lint", ()),
    ("docs", ()),
    ("fmt", ()),
)


def _earlier(**statuses: Status) -> list[StepRun]:
    return [StepRun(build_id=1, name=n, status=s) for n, s in statuses.items()]


def test_the_step_and_its_needs_run_the_rest_keep_their_result():
    earlier = _earlier(
        install=Status.PASSED, test=Status.FAILED, deploy=Status.SKIPPED,
        lint=Status.FAILED, docs=Status.PASSED, fmt=Status.ERRORED,
    )  # fmt: skip
    kept = reusable_steps(PIPELINE, earlier, step="test")
    assert {"lint": Status.FAILED, "docs": Status.PASSED} == {n: r.status for n, r in kept.items()}


def test_a_step_no_longer_in_the_pipeline_reruns_the_failed_steps():
    earlier = _earlier(install=Status.PASSED, test=Status.FAILED, lint=Status.PASSED)
    assert reusable_steps(PIPELINE, earlier) == reusable_steps(PIPELINE, earlier, step="gone")
