"""Step.condition: decided when the step's needs have ended, from their results."""

from __future__ import annotations

import pytest

from sauci.core.conditions import condition_verdict
from sauci.core.models import Status, Step, StepRun
from sauci.core.step_parts import Condition


def run(name: str, status: Status, allow_failure: bool = False) -> StepRun:
    return StepRun(build_id=1, name=name, status=status, allow_failure=allow_failure)


def step(expression: str, **kwargs) -> Step:
    condition = Condition(expression=expression, origin="ci.yml:4:9", **kwargs)
    return Step(name="report", run="true", needs=("a", "b"), condition=condition)


PASSED = {"a": run("a", Status.PASSED), "b": run("b", Status.PASSED)}
FAILED = {"a": run("a", Status.PASSED), "b": run("b", Status.FAILED)}


@pytest.mark.parametrize(
    ("expression", "runs", "runs_now"),
    [
        ("always()", FAILED, True),
        ("failure()", FAILED, True),
        ("failure()", PASSED, False),
        ("success()", FAILED, False),
        ("!cancelled()", FAILED, True),
        ("true", FAILED, False),  # no status function: success() && (true)
        ("true", PASSED, True),
        ("needs.test.result == 'failure'", FAILED, False),  # success() && ...
        ("always() && needs.test.result == 'failure'", FAILED, True),
        ("always() && contains(needs.*.result, 'failure')", FAILED, True),
        ("always() && contains(needs.*.result, 'failure')", PASSED, False),
    ],
)
def test_status_functions_answer_from_the_needed_steps(expression, runs, runs_now):
    verdict = condition_verdict(step(expression, needs={"test": ("a", "b")}), ["a", "b"], runs)
    assert runs_now == (verdict is None)


def test_a_step_may_fail_counts_as_passed():
    runs = {"a": run("a", Status.PASSED), "b": run("b", Status.FAILED, allow_failure=True)}
    assert condition_verdict(step("success()"), ["a", "b"], runs) is None


def test_a_false_condition_skips_with_its_reason_or_the_expression():
    assert (Status.SKIPPED, "skipped: 'if: failure()' is false") == condition_verdict(
        step("failure()"), ["a", "b"], PASSED
    )
    reasoned = step("false", reason="skipped: runs-on windows-latest")
    assert (Status.SKIPPED, "skipped: runs-on windows-latest") == condition_verdict(
        reasoned, ["a", "b"], PASSED
    )


def test_a_broken_expression_fails_the_step_at_its_position():
    status, reason = condition_verdict(step("always() &&"), ["a", "b"], PASSED)
    assert Status.FAILED == status
    assert reason.startswith("ci.yml:4:9: cannot evaluate 'if: always() &&'")


def test_no_condition_means_the_usual_rules():
    assert condition_verdict(Step(name="x", run="true"), [], {}) is None
