"""Step.expansion: a step whose steps are added to the running build when its needs end.

The added steps are recorded (store, status, log) like any other, the
steps that needed the placeholder wait for all of them, and an expansion
that cannot be made fails the placeholder with its reason, never the
build's machinery. Step.max_parallel holds a group to n running steps.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sauci import Pipeline, Status, Step, run_pipeline
from sauci.core.config import Settings
from sauci.core.models import StepRun
from sauci.core.rerun import reusable_steps
from sauci.core.step_parts import Expansion


def _run(tmp_path: Path, steps: list[Step], jobs: int = 4):
    workspace = tmp_path / "ws"
    workspace.mkdir(exist_ok=True)
    settings = Settings(data_dir=tmp_path / "data", grace=1.0, jobs=jobs)
    return run_pipeline(Pipeline(steps=steps), workspace, settings=settings, secrets={})


def _from_file(workspace: Path) -> list[Step]:
    """Steps named by the list in ``names.json``, which the step before wrote."""
    names = json.loads((workspace / "names.json").read_text())
    return [
        Step(name=f"entry {n}", run=f"echo entry-{n}", needs=["setup"], matrix={"n": str(n)})
        for n in names
    ]


def test_added_steps_run_recorded_and_the_steps_after_wait_for_all(tmp_path: Path) -> None:
    steps = [
        Step(name="setup", run="echo '[1, 2, 3]' > names.json", needs=[]),
        Step(
            name="entries",
            run="false",  # never run: the placeholder expands instead
            needs=["setup"],
            expansion=Expansion(describe="entries from names.json", expand=_from_file),
        ),
        Step(name="after", run="echo after", needs=["entries"]),
    ]
    outcome = _run(tmp_path, steps)
    by_name = {s.name: s for s in outcome.steps}
    assert Status.PASSED == outcome.status, outcome.reason
    assert {"setup", "entries", "after", "entry 1", "entry 2", "entry 3"} == set(by_name)
    assert "added 3 steps: 'entry 1', 'entry 2', 'entry 3'" == by_name["entries"].reason
    assert ("entry 1", "entry 2", "entry 3") == by_name["after"].needs
    after = by_name["after"].started_at or 0
    assert all(after >= (by_name[f"entry {n}"].finished_at or 1e18) for n in (1, 2, 3))
    assert "entry-2" in Path(by_name["entry 2"].log_path).read_text()


def test_a_failed_added_step_fails_the_build_and_skips_the_steps_after(tmp_path: Path) -> None:
    def expand(workspace: Path) -> list[Step]:
        return [Step(name="bad", run="exit 4", needs=[]), Step(name="good", run="true", needs=[])]

    steps = [
        Step(name="x", run="true", needs=[], expansion=Expansion(describe="d", expand=expand)),
        Step(name="after", run="echo never", needs=["x"]),
    ]
    outcome = _run(tmp_path, steps)
    by_name = {s.name: s for s in outcome.steps}
    assert Status.FAILED == outcome.status
    assert Status.FAILED == by_name["bad"].status
    assert "skipped: needs 'bad', which failed" == by_name["after"].reason


def _expansion(expand) -> Expansion:
    return Expansion(describe="job 'test': matrix from needs.setup.outputs.matrix", expand=expand)


def _raises(workspace: Path) -> list[Step]:
    raise ValueError("fromJSON: not valid JSON")


def _too_many(workspace: Path) -> list[Step]:
    return [Step(name=f"s{i}", run="true", needs=[]) for i in range(10_000)]


def _taken(workspace: Path) -> list[Step]:
    return [Step(name="after", run="true", needs=[])]


def _unknown_need(workspace: Path) -> list[Step]:
    return [Step(name="n", run="true", needs=["nowhere"])]


@pytest.mark.parametrize(
    ("expand", "reason"),
    [
        (_raises, "fromJSON: not valid JSON"),
        (_too_many, "10000 steps, more than the limit of 256"),
        (_taken, "the step name 'after' is already used"),
        (_unknown_need, "'n' needs unknown step 'nowhere'"),
    ],
)
def test_an_expansion_that_cannot_be_made_fails_its_step_with_the_reason(
    tmp_path: Path, expand, reason: str
) -> None:
    steps = [
        Step(name="test", run="true", needs=[], expansion=_expansion(expand)),
        Step(name="after", run="echo never", needs=["test"]),
    ]
    outcome = _run(tmp_path, steps)
    by_name = {s.name: s for s in outcome.steps}
    assert ["test", "after"] == [s.name for s in outcome.steps]  # nothing was added
    assert Status.FAILED == by_name["test"].status
    expected = f"job 'test': matrix from needs.setup.outputs.matrix: {reason}"
    assert expected == by_name["test"].reason
    assert Status.SKIPPED == by_name["after"].status
    assert Status.FAILED == outcome.status


def test_max_parallel_holds_a_group_to_n_running_steps(tmp_path: Path) -> None:
    running = tmp_path / "running"
    running.mkdir()
    seen = tmp_path / "seen"
    script = (
        f"mkdir {running}/$SAUCI_STEP_ID; ls {running} | wc -l >> {seen}; "
        f"sleep 0.3; rmdir {running}/$SAUCI_STEP_ID"
    )
    steps = [
        Step(
            name=f"e{i}",
            run=script,
            needs=[],
            env={"SAUCI_STEP_ID": f"e{i}"},
            max_parallel=("g", 2),
        )
        for i in range(5)
    ]
    outcome = _run(tmp_path, steps, jobs=5)
    assert Status.PASSED == outcome.status, outcome.reason
    counts = [int(line) for line in seen.read_text().split()]
    assert 5 == len(counts)
    assert max(counts) <= 2


def test_a_rerun_expands_again_with_what_it_needs() -> None:
    steps = [
        Step(name="setup", run="true", needs=[]),
        Step(name="x", run="true", needs=["setup"], expansion=_expansion(_taken)),
        Step(name="other", run="true", needs=[]),
    ]
    pipeline = Pipeline(steps=steps)

    earlier = [
        StepRun(build_id=1, name=n, position=i, status=Status.PASSED)
        for i, n in enumerate(["setup", "x", "other"])
    ]
    earlier.append(StepRun(build_id=1, name="x (1)", position=3, status=Status.FAILED))
    assert {"other"} == set(reusable_steps(pipeline, earlier))
    one = reusable_steps(pipeline, earlier, step="other")
    assert not {"setup", "x", "other"} & set(one)


def _bug(workspace: Path) -> list[Step]:
    raise KeyError("a bug")


def test_a_bug_in_an_expansion_errors_its_step_not_the_build_machinery(tmp_path: Path) -> None:
    steps = [
        Step(name="x", run="true", needs=[], expansion=Expansion(describe="d", expand=_bug)),
        Step(name="other", run="true", needs=[]),
    ]
    outcome = _run(tmp_path, steps)
    by_name = {s.name: s for s in outcome.steps}
    assert Status.ERRORED == by_name["x"].status
    assert "SauCI failed while adding the step's steps: 'a bug'" == by_name["x"].reason
    assert Status.PASSED == by_name["other"].status
    assert Status.ERRORED == outcome.status
