"""actions/checkout's ``path:``: the commit is also at that directory of the
workspace (a copy), as a workflow that checks out into a sub-directory and
works there expects; a path from the pushed file never leaves the workspace
and is never run as script."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sauci.exceptions import PipelineError
from sauci.workflows.github import Settings, plan_github

GIT = ["git", "-c", "user.name=Tester", "-c", "user.email=t@example.com"]
MARKER = Path("/tmp/sauci-checkout-path-pwned")

WORKFLOW = """\
on: push
jobs:
  test:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
        with:
          path: PATH
      - working-directory: PATH
        run: |
          test -f pkg/mod.py && test -f .github/workflows/ci.yml
          test ! -e "$(basename "$PWD")" && test ! -e .sauci-gha
          echo "in the copy: $(cat pkg/mod.py)"
"""


def step_of(text: str):
    return plan_github(text, Settings(file="ci.yml")).pipeline.steps[0]


@pytest.mark.parametrize("path", ["src/project", f"$(touch {MARKER})"])
def test_the_job_works_in_the_checkout_at_its_path(tmp_path: Path, monkeypatch, path) -> None:
    monkeypatch.setenv("SAUCI_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("SAUCI_STORE", raising=False)
    MARKER.unlink(missing_ok=True)
    repo = tmp_path / "repo"
    (repo / ".github" / "workflows").mkdir(parents=True)
    (repo / ".github" / "workflows" / "ci.yml").write_text(WORKFLOW.replace("PATH", f"'{path}'"))
    (repo / "pkg").mkdir()
    (repo / "pkg" / "mod.py").write_text("x = 1\n")
    subprocess.run([*GIT, "init", "-q", "-b", "main"], cwd=repo, check=True)
    subprocess.run([*GIT, "add", "."], cwd=repo, check=True)
    subprocess.run([*GIT, "commit", "-q", "-m", "m"], cwd=repo, check=True)
    result = subprocess.run(
        [sys.executable, "-m", "sauci", "run", str(repo), "--color", "never"],
        capture_output=True, text=True, timeout=120, env=dict(os.environ),
    )  # fmt: skip
    out = result.stdout + result.stderr
    assert 0 == result.returncode, out
    assert "in the copy: x = 1" in out
    assert not MARKER.exists()  # the path was a directory name, never a command


@pytest.mark.parametrize("path", ["../outside", "/etc", "a/../../b", ".sauci-gha/x"])
def test_a_path_out_of_the_workspace_is_a_problem_naming_it(path: str) -> None:
    with pytest.raises(PipelineError) as caught:
        step_of(WORKFLOW.replace("PATH", f"'{path}'"))
    assert "ci.yml:6:" in str(caught.value) and "actions/checkout 'path:" in str(caught.value)


def test_submodules_are_updated_before_the_copy() -> None:
    text = WORKFLOW.replace("path: PATH", "path: sub\n          submodules: recursive")
    script = step_of(text.replace("PATH", "sub")).script()
    assert script.index("git submodule update --init --recursive") < script.index("tar ")
