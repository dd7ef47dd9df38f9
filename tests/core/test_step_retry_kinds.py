"""Step.retry_when: which failures are tried again, decided from how an
attempt ended (exit code, timeout, resource limit, sandbox error)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from sauci import Pipeline, Status, Step, run_pipeline
from sauci.core.config import Settings
from sauci.core.executor import Executor
from sauci.core.models import BuildRequest, EndedBy, StepResult
from sauci.core.step_retry import failure_kind, retry_sandbox_error, should_retry
from sauci.exceptions import SandboxError
from sauci.sandbox.local import LocalSandbox
from sauci.storage.memory import MemoryStore

FAILED = StepResult(exit_code=1)
TIMED_OUT = StepResult(exit_code=None, ended_by=EndedBy.TIMEOUT, reason="timeout")
OOM = StepResult(exit_code=None, ended_by=EndedBy.OUT_OF_MEMORY, reason="oom")
CANCELLED = StepResult(exit_code=None, ended_by=EndedBy.CANCELLED, reason="cancelled")


def test_each_ending_has_its_kind() -> None:
    assert [failure_kind(r) for r in (StepResult(exit_code=0), FAILED, TIMED_OUT, OOM)] == [
        None, "exit", "timeout", "resource",
    ]  # fmt: skip
    assert failure_kind(CANCELLED) is None


@pytest.mark.parametrize(
    ("when", "codes", "result", "expected"),
    [
        ((), (), FAILED, True),  # neither: any failure, as before
        ((), (), TIMED_OUT, True),
        (("exit",), (), TIMED_OUT, False),
        (("timeout",), (), TIMED_OUT, True),
        (("timeout",), (), FAILED, False),
        (("resource",), (), OOM, True),
        ((), (137,), FAILED, False),  # only the codes listed
        ((), (1,), FAILED, True),
        (("timeout",), (1,), FAILED, True),  # a code or a kind
        (("any",), (), OOM, True),
        (("any",), (), CANCELLED, False),  # a cancel is never retried
    ],
)
def test_retry_when_and_retry_on(
    when: tuple[str, ...], codes: tuple[int, ...], result: StepResult, expected: bool
) -> None:
    step = Step(name="s", run="x", retries=1, retry_when=when, retry_on=codes)
    assert should_retry(step, result, 1) is expected
    assert should_retry(step, result, 2) is False  # retries spent


def test_a_sandbox_error_is_retried_only_when_asked() -> None:
    assert not retry_sandbox_error(Step(name="s", run="x", retries=2), 1)
    assert retry_sandbox_error(Step(name="s", run="x", retries=2, retry_when=["sandbox"]), 2)
    assert not retry_sandbox_error(Step(name="s", run="x", retries=2, retry_when=["any"]), 3)


def test_an_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="retry_when: 'flaky' is not one of"):
        Step(name="s", run="x", retry_when=["flaky"])


def test_a_timeout_is_retried_when_asked_and_the_attempts_are_logged(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", grace=1.0)
    # Times out on its first attempt, passes on its second.
    script = "if [ -e once ]; then exit 0; fi; touch once; sleep 30"
    steps = [
        Step(name="t", run=script, timeout=0.5, retries=1, retry_when=["timeout"], needs=[]),
        Step(name="e", run="exit 3", timeout=5, retries=2, retry_when=["timeout"], needs=[]),
    ]
    outcome = run_pipeline(Pipeline(steps=steps), tmp_path, settings=settings, secrets={})
    t, e = outcome.step("t"), outcome.step("e")
    assert (t.status, t.attempt) == (Status.PASSED, 2)
    log = Path(t.log_path).read_text()
    assert "retrying (attempt 2 of 2)" in log
    assert (e.status, e.attempt) == (Status.FAILED, 1)  # exit 3 is not a timeout


class _Flaky(LocalSandbox):
    """A sandbox that cannot start the step the first time."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def run(self, step, workspace, log, **kw):  # type: ignore[no-untyped-def,override]
        self.calls += 1
        if self.calls == 1:
            raise SandboxError("the daemon went away")
        return super().run(step, workspace, log, **kw)


@pytest.mark.parametrize(
    ("when", "expected"), [(("sandbox",), Status.PASSED), ((), Status.ERRORED)]
)
def test_a_sandbox_error_is_tried_again_with_retry_when_sandbox(
    tmp_path: Path, when: tuple[str, ...], expected: Status
) -> None:
    settings = Settings(data_dir=tmp_path / "data", grace=1.0)
    store = MemoryStore()
    build = store.create_build(BuildRequest(repo="r"), status=Status.RUNNING)
    executor = Executor(
        store=store, sandbox=_Flaky(), logs_dir=settings.logs_dir,
        artifacts_dir=settings.artifacts_dir, secrets={},
    )  # fmt: skip
    pipeline = Pipeline(steps=[Step(name="s", run="true", retries=1, retry_when=when)])
    [step] = executor.execute(build, pipeline, tmp_path, cancel=threading.Event())
    assert step.status is expected
    if expected is Status.PASSED:
        assert (
            "the sandbox failed: the daemon went away; retrying" in Path(step.log_path).read_text()
        )


def test_a_sauci_yml_step_names_its_retry_kinds() -> None:
    from sauci.core.pipeline import dump_pipeline, parse_pipeline
    from sauci.exceptions import PipelineError

    text = "steps:\n  a:\n    run: x\n    retries: 1\n    retry_when: [timeout, sandbox]\n"
    pipeline = parse_pipeline(text, ".sauci.yml")
    assert pipeline.steps[0].retry_when == ("timeout", "sandbox")
    assert parse_pipeline(dump_pipeline(pipeline), ".sauci.yml") == pipeline
    with pytest.raises(PipelineError) as caught:
        parse_pipeline(text.replace("sandbox]", "flaky]"), ".sauci.yml")
    [problem] = caught.value.problems
    assert str(problem) == (
        ".sauci.yml:5:27: 'retry_when' in step 'a': 'flaky' is not one of "
        "exit, timeout, resource, sandbox, any"
    )
