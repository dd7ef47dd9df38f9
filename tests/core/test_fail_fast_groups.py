"""Step.fail_fast_group: a failed step stops its group's other steps, not the rest of the build."""

from __future__ import annotations

from pathlib import Path

from sauci import Pipeline, Status, Step, run_pipeline
from sauci.core.config import Settings


def test_a_failed_entry_cancels_its_running_siblings_and_skips_the_queued_ones(tmp_path: Path):
    workspace = tmp_path / "ws"
    workspace.mkdir()
    settings = Settings(data_dir=tmp_path / "data", grace=1.0, jobs=3)
    group = {"needs": [], "fail_fast_group": "test"}
    # "other" ends once "test (2)" was stopped, so after "test (1)" failed
    # (a fixed head start for "test (1)" lost on a loaded machine).
    stopped = tmp_path / "stopped"
    steps = [
        Step(name="test (1)", run="exit 1", **group),
        Step(
            name="test (2)", run=f"trap 'touch {stopped}; exit 143' TERM; sleep 30 & wait", **group
        ),
        Step(
            name="other",
            run=f"while [ ! -e {stopped} ]; do sleep 0.05; done; echo done",
            needs=[],
            timeout=60,
        ),
        Step(name="test (3)", run="echo never", needs=["other"], fail_fast_group="test"),
        Step(name="later (1)", run="echo independent", needs=["other"], fail_fast_group="later"),
    ]
    outcome = run_pipeline(Pipeline(steps=steps), workspace, settings=settings, secrets={})
    by_name = {s.name: s for s in outcome.steps}
    assert Status.FAILED == by_name["test (1)"].status
    assert Status.CANCELLED == by_name["test (2)"].status
    assert Status.PASSED == by_name["other"].status  # another group goes on
    assert Status.SKIPPED == by_name["test (3)"].status
    assert "skipped: fail-fast after 'test (1)' failed" == by_name["test (3)"].reason
    assert Status.PASSED == by_name["later (1)"].status
    assert Status.FAILED == outcome.status


def test_a_step_that_may_fail_does_not_stop_its_group(tmp_path: Path):
    workspace = tmp_path / "ws"
    workspace.mkdir()
    settings = Settings(data_dir=tmp_path / "data", grace=1.0, jobs=1)
    steps = [
        Step(name="a", run="exit 1", needs=[], fail_fast_group="g", allow_failure=True),
        Step(name="b", run="true", needs=[], fail_fast_group="g"),
    ]
    outcome = run_pipeline(Pipeline(steps=steps), workspace, settings=settings, secrets={})
    assert [Status.FAILED, Status.PASSED] == [s.status for s in outcome.steps]
