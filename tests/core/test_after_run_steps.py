"""Step.after_run: run after each attempt however it ended (passed, failed,
timed out, cancelled), within its own limit, logged, never changing the status."""

from __future__ import annotations

import threading
from pathlib import Path

from sauci import Pipeline, Status, Step, run_pipeline
from sauci.core.config import Settings
from sauci.core.models import EndedBy


def _settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", grace=1.0)


def _log(run) -> str:  # type: ignore[no-untyped-def]
    return Path(run.log_path).read_text()


def test_after_run_follows_every_ending_and_never_changes_the_status(tmp_path: Path) -> None:
    after = ['echo "after: $SAUCI_STEP_STATUS"']
    steps = [
        Step(name="ok", run="true", after_run=[*after, "exit 4"], needs=[]),
        Step(name="bad", run="exit 2", after_run=after, needs=[]),
        Step(name="slow", run="sleep 30", timeout=0.5, after_run=after, needs=[]),
        Step(
            name="hang",
            run="exit 1",
            after_run=["echo begun", "sleep 30", "echo never"],
            after_timeout=0.5,
            needs=[],
        ),
    ]
    outcome = run_pipeline(
        Pipeline(steps=steps), tmp_path, settings=_settings(tmp_path), secrets={}
    )
    ok, bad, slow, hang = (outcome.step(n) for n in ("ok", "bad", "slow", "hang"))
    assert ok.status is Status.PASSED  # after_run's exit 4 changes nothing
    assert "after: passed" in _log(ok)
    assert "after_run ended with exit code 4; the step's status comes from its run" in _log(ok)
    assert (bad.status, bad.exit_code) == (Status.FAILED, 2)
    assert "after: failed" in _log(bad)
    assert (slow.status, slow.ended_by) == (Status.FAILED, EndedBy.TIMEOUT)
    assert "after: timeout" in _log(slow)
    assert (hang.status, hang.exit_code) == (Status.FAILED, 1)
    assert "begun" in _log(hang) and "never" not in _log(hang)
    assert "after_run was ended after its 0.5 s limit" in _log(hang)


def test_after_run_runs_after_a_cancel(tmp_path: Path) -> None:
    from sauci.app import LocalRunner
    from sauci.core.models import BuildRequest
    from sauci.storage.memory import MemoryStore

    runner = LocalRunner(store=MemoryStore(), settings=_settings(tmp_path), secrets={})
    step = Step(name="hang", run="sleep 60", after_run=['echo "cleanup: $SAUCI_STEP_STATUS"'])
    timer = threading.Timer(0.5, runner.cancel_all)
    timer.start()
    outcome = runner.run_pipeline(Pipeline(steps=[step]), tmp_path, BuildRequest(repo="r"))
    timer.join()
    hang = outcome.step("hang")
    assert hang.status is Status.CANCELLED
    assert "cleanup: cancelled" in _log(hang)


def test_each_retry_runs_after_run(tmp_path: Path) -> None:
    step = Step(name="s", run="exit 1", retries=2, after_run=["echo cleaned"])
    outcome = run_pipeline(
        Pipeline(steps=[step]), tmp_path, settings=_settings(tmp_path), secrets={}
    )
    assert _log(outcome.step("s")).count("cleaned") == 3
