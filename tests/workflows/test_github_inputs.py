"""workflow_dispatch inputs: the declared defaults, then the build's parameters (`sauci trigger --param`)."""

from __future__ import annotations

from pathlib import Path

from sauci.core.models import Build
from sauci.workflows import load_for_build

WORKFLOW = """\
on:
  workflow_dispatch:
    inputs:
      level: {type: choice, options: [quick, full], default: quick}
      debug: {type: boolean, default: false}
      note: {type: string}
jobs:
  test:
    runs-on: ubuntu-latest
    steps:
      - run: echo "level=${{ inputs.level }} debug=${{ inputs.debug }} event=${{ github.event_name }}"
      - if: inputs.debug
        run: echo debugging
"""


def workspace(tmp_path: Path) -> Path:
    (tmp_path / ".github" / "workflows").mkdir(parents=True)
    (tmp_path / ".github" / "workflows" / "manual.yml").write_text(WORKFLOW)
    return tmp_path


def test_defaults_fill_in_what_the_build_does_not_give(tmp_path: Path) -> None:
    build = Build(id=1, repo="r", ref="refs/heads/main", event="manual")
    (step,) = load_for_build(workspace(tmp_path), build).steps
    assert "level=quick debug=false event=workflow_dispatch" in step.script()


def test_the_build_s_parameters_are_the_inputs(tmp_path: Path) -> None:
    build = Build(
        id=1,
        repo="r",
        ref="refs/heads/main",
        event="manual",
        params={"level": "full", "debug": "true"},
    )
    (step,) = load_for_build(workspace(tmp_path), build).steps
    assert "level=full debug=true event=workflow_dispatch" in step.script()
    assert '"debug": true' in step.script()  # a boolean input is a boolean for if:
