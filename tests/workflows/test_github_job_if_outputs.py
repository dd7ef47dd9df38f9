"""A job's ``if:`` sees the outputs of the jobs it needs (``needs.<job>.outputs``),
read from where the job driver left them, and only from inside the workspace."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from sauci.core.conditions import condition_verdict
from sauci.core.models import Status, Step, StepRun
from sauci.core.step_parts import Condition

GIT = ["git", "-c", "user.name=Tester", "-c", "user.email=t@example.com"]

WORKFLOW = """\
on: push
jobs:
  setup:
    runs-on: ubuntu-latest
    outputs:
      go: ${{ steps.decide.outputs.go }}
    steps:
      - id: decide
        run: echo "go=yes" >> "$GITHUB_OUTPUT"
  deploy:
    needs: setup
    if: needs.setup.outputs.go == 'yes'
    runs-on: ubuntu-latest
    steps:
      - run: echo "deploying because ${{ needs.setup.outputs.go }}"
  hold:
    needs: setup
    if: ${{ needs.setup.outputs.go != 'yes' }}
    runs-on: ubuntu-latest
    steps:
      - run: echo "held back"
"""


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("SAUCI_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("SAUCI_STORE", raising=False)


def test_a_job_if_decides_on_the_outputs_of_the_job_it_needs(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / ".github" / "workflows").mkdir(parents=True)
    (repo / ".github" / "workflows" / "ci.yml").write_text(WORKFLOW)
    subprocess.run([*GIT, "init", "-q", "-b", "main"], cwd=repo, check=True)
    subprocess.run([*GIT, "add", "."], cwd=repo, check=True)
    subprocess.run([*GIT, "commit", "-q", "-m", "m"], cwd=repo, check=True)
    result = subprocess.run(
        [sys.executable, "-m", "sauci", "run", str(repo), "--color", "never"],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ),
    )
    out = result.stdout + result.stderr
    assert 0 == result.returncode, out
    assert "deploying because yes" in out
    assert "held back" not in out
    assert "needs.setup.outputs.go != 'yes'" in out  # hold's skip reason


def verdict(workspace: Path, relative: str) -> tuple[Status, str] | None:
    step = Step(
        name="deploy",
        run="true",
        condition=Condition(
            expression="needs.setup.outputs.go == 'yes'",
            needs={"setup": ("setup",)},
            outputs={"setup": relative},
        ),
    )
    runs = {"setup": StepRun(build_id=1, name="setup", status=Status.PASSED)}
    return condition_verdict(step, ["setup"], runs, workspace=workspace)


def test_outputs_are_read_only_from_inside_the_workspace(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    (workspace / "out").mkdir(parents=True)
    outside = tmp_path / "outside.json"
    outside.write_text(json.dumps({"go": "yes"}))
    (workspace / "out" / "link.json").symlink_to(outside)
    (workspace / "out" / "ok.json").write_text(json.dumps({"go": "yes", "n": 1}))
    (workspace / "out" / "list.json").write_text("[1]")
    assert verdict(workspace, "out/ok.json") is None  # runs
    for relative in ("out/link.json", "../outside.json", "out/list.json", "out/missing.json"):
        ended = verdict(workspace, relative)
        assert ended is not None and ended[0] is Status.SKIPPED, relative


MATRIX = """\
on: push
jobs:
  build:
    runs-on: ubuntu-latest
    strategy:
      matrix:
        n: [1, 2]
    outputs:
      last: ${{ steps.mark.outputs.n }}
    steps:
      - if: matrix.n == 1
        run: sleep 2
      - id: mark
        run: echo "n=${{ matrix.n }}" >> "$GITHUB_OUTPUT"
  report:
    needs: build
    runs-on: ubuntu-latest
    steps:
      - run: echo "the last entry was ${{ needs.build.outputs.last }}"
"""


def test_a_matrix_jobs_outputs_are_those_of_its_entry_that_ended_last(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / ".github" / "workflows").mkdir(parents=True)
    (repo / ".github" / "workflows" / "ci.yml").write_text(MATRIX)
    subprocess.run([*GIT, "init", "-q", "-b", "main"], cwd=repo, check=True)
    subprocess.run([*GIT, "add", "."], cwd=repo, check=True)
    subprocess.run([*GIT, "commit", "-q", "-m", "m"], cwd=repo, check=True)
    result = subprocess.run(
        [sys.executable, "-m", "sauci", "run", str(repo), "--color", "never"],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ),
    )
    out = result.stdout + result.stderr
    assert 0 == result.returncode, out
    # Entry 1 sleeps first: side by side it ends last, one at a time entry 2
    # does. The live lines say which ended last.
    ended = re.findall(r"passed build \((\d)\)", out.split("STATUS")[0])
    assert len(ended) == 2, out
    assert f"the last entry was {ended[-1]}" in out, out


def test_entry_outputs_take_the_latest_and_skip_broken_files(tmp_path: Path) -> None:
    from sauci.workflows.github.artifactfiles import entry_outputs

    for name, text in {
        "a.json": json.dumps({"ended": 2.0, "outputs": {"x": "late"}}),
        "b.json": json.dumps({"ended": 1.0, "outputs": {"x": "early"}}),
        "c.json": json.dumps({"ended": "soon", "outputs": {"x": "broken"}}),
        "d.json": "not json",
    }.items():
        (tmp_path / name).write_text(text)
    paths = ["b.json", "c.json", "a.json", "d.json", "missing.json"]
    assert entry_outputs(str(tmp_path), paths) == {"x": "late"}
