"""The executor's step threads: a crash errors one step, a dead store ends the
build, and no step thread outlives the build either way."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from sauci import Pipeline, Status, Step, run_pipeline
from sauci.core.config import Settings
from sauci.exceptions import StoreError
from sauci.sandbox.local import LocalSandbox
from sauci.storage.memory import MemoryStore


class CrashingSandbox(LocalSandbox):
    """Raises a plain exception (a bug) for the step named "boom"."""

    def run(self, step, workspace, log, **kw):
        if step.name == "boom":
            raise RuntimeError("bug in a sandbox")
        return super().run(step, workspace, log, **kw)


class FailingStore(MemoryStore):
    """Loses its connection when a given step is recorded as finished."""

    def __init__(self, fail_on: str) -> None:
        super().__init__()
        self.fail_on = fail_on

    def save_step(self, run):
        if run.name == self.fail_on and run.status.done:
            raise StoreError("connection lost")
        return super().save_step(run)


def step_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("sauci-b")]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", grace=1.0)


def test_a_crashing_step_errors_and_the_others_run(tmp_path, settings):
    pipeline = Pipeline(
        steps=[
            Step(name="boom", run="true", needs=[]),
            Step(name="fine", run="true", needs=[]),
            Step(name="after", run="true", needs=["boom"]),
        ]
    )
    outcome = run_pipeline(
        pipeline, tmp_path, settings=settings, secrets={}, sandbox=CrashingSandbox()
    )
    steps = {s.name: s for s in outcome.steps}
    assert Status.ERRORED is steps["boom"].status
    assert "bug in a sandbox" in (steps["boom"].reason or "")
    assert Status.PASSED is steps["fine"].status
    assert Status.SKIPPED is steps["after"].status
    assert Status.ERRORED is outcome.status
    assert [] == step_threads()


def test_a_dead_store_errors_the_build_and_ends_the_other_steps(tmp_path, settings):
    pipeline = Pipeline(
        steps=[
            Step(name="quick", run="true", needs=[]),
            Step(name="slow", run="sleep 30", needs=[]),
        ]
    )
    store = FailingStore(fail_on="quick")
    outcome = run_pipeline(pipeline, tmp_path, settings=settings, secrets={}, store=store)
    assert Status.ERRORED is outcome.status
    assert (outcome.build.reason or "").startswith("store unavailable: connection lost")
    assert [] == step_threads()  # "slow" was cancelled and its thread joined


def test_many_parallel_steps_each_finish_once(tmp_path, settings):
    pipeline = Pipeline(steps=[Step(name=f"s{i}", run="true", needs=[]) for i in range(12)])
    outcome = run_pipeline(
        pipeline, tmp_path, settings=Settings(data_dir=tmp_path / "d", jobs=3), secrets={}
    )
    assert [Status.PASSED] * 12 == [s.status for s in outcome.steps]
    assert [1] * 12 == [s.attempt for s in outcome.steps]
    assert [] == step_threads()


class ThreadNoting(LocalSandbox):
    """Notes which thread ran each step, and its name meanwhile."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[int, str]] = []

    def run(self, step, workspace, log, **kw):
        this = threading.current_thread()
        self.seen.append((this.ident or 0, this.name))
        return super().run(step, workspace, log, **kw)


def test_step_threads_are_kept_from_one_build_to_the_next(tmp_path, settings):
    from sauci.core.executor import Executor
    from sauci.core.models import BuildRequest

    store = MemoryStore()
    sandbox = ThreadNoting()
    executor = Executor(
        store=store,
        sandbox=sandbox,
        logs_dir=settings.logs_dir,
        artifacts_dir=settings.artifacts_dir,
        secrets={},
    )
    pipeline = Pipeline(steps=[Step(name="only", run="true")])
    ids = []
    for _ in range(2):
        build = store.create_build(BuildRequest(repo="r"), status=Status.RUNNING)
        ids.append(build.id)
        [step] = executor.execute(build, pipeline, tmp_path, cancel=threading.Event())
        assert Status.PASSED is step.status
        assert [] == step_threads()  # idle between builds, under another name
    (first, first_name), (second, second_name) = sandbox.seen
    assert first == second  # the same thread, not one made per build
    assert [f"sauci-b{ids[0]}-only", f"sauci-b{ids[1]}-only"] == [first_name, second_name]
    executor.threads.close()
    assert first not in {t.ident for t in threading.enumerate()}
