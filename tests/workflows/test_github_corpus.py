"""Each workflow in tests/workflows/github/ gives the plan (or the problems) in its golden file.

The files are written for SauCI in the shapes real Python projects use
(tox and nox matrices, uv, alls-green, expressions, a local composite
action, what is not supported).
The machine is made the same everywhere: a PATH holding Python 3.11 to 3.13
and uv (stand-ins that start and exit), and a workspace whose
``.python-version`` says 3.12. Set SAUCI_UPDATE_GOLDEN=1 to rewrite the
golden files after a deliberate change, then read the diff.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sauci.exceptions import PipelineError
from sauci.workflows import Options, load_workflow

CORPUS = Path(__file__).parent / "github"
# The local composite action composite.yml uses, as a project keeps one.
LOCAL_ACTION = """\
name: Set up the project
inputs:
  python-version:
    description: the Python to test with
    default: "3.12"
  extras:
    default: tests
runs:
  using: composite
  steps:
    - uses: actions/setup-python@v5
      with:
        python-version: ${{ inputs.python-version }}
    - name: Install with ${{ inputs.extras }}
      shell: bash
      run: python -m pip install -e ".[${{ inputs.extras }}]"
"""
FILES = sorted(CORPUS.glob("*.yml"))


@pytest.fixture(scope="module")
def machine(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("machine")
    bin_dir = root / "bin"
    bin_dir.mkdir()
    for name in ("python3.11", "python3.12", "python3.13", "uv"):
        tool = bin_dir / name
        tool.write_text("#!/bin/sh\nexit 0\n")
        tool.chmod(0o755)
    workspace = root / "workspace"
    workspace.mkdir()
    (workspace / ".python-version").write_text("3.12\n")
    action = workspace / ".github" / "actions" / "setup-project"
    action.mkdir(parents=True)
    (action / "action.yml").write_text(LOCAL_ACTION)
    return workspace, str(bin_dir)


def plan_text(path: Path, machine: tuple[Path, str]) -> str:
    workspace, bin_dir = machine
    options = Options(workspace=workspace, shown_as=path.name, path=bin_dir)
    try:
        return load_workflow("github", path, options).plan
    except PipelineError as exc:
        return "".join(f"{problem}\n" for problem in exc.problems)


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_the_plan_is_the_golden_one(path: Path, machine: tuple[Path, str]) -> None:
    actual = plan_text(path, machine)
    golden = path.with_suffix(".plan")
    if os.environ.get("SAUCI_UPDATE_GOLDEN") == "1":
        golden.write_text(actual)
    assert golden.read_text() == actual


def test_the_corpus_has_a_golden_file_for_each_workflow() -> None:
    assert 5 <= len(FILES)
    assert [p.with_suffix(".plan").name for p in FILES] == sorted(
        p.name for p in CORPUS.glob("*.plan")
    )
