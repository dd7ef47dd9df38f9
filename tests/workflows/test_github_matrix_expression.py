"""A whole ``strategy.matrix`` written as one expression: evaluated when the
plan is made if it reads what is known then, else the error naming it."""

from __future__ import annotations

import pytest

from sauci.exceptions import ConfigError
from sauci.workflows.github import Settings, plan_github

WORKFLOW = """\
on:
  workflow_dispatch:
    inputs:
      matrix:
        default: '{"python": ["3.11", "3.12"], "include": [{"python": "3.13", "extra": "yes"}]}'
env:
  OS_LIST: '{"os": ["ubuntu-latest"]}'
jobs:
  setup:
    runs-on: ubuntu-latest
    outputs:
      matrix: ${{ steps.m.outputs.matrix }}
    steps:
      - id: m
        run: echo 'matrix={"n":[1]}' >> "$GITHUB_OUTPUT"
  test:
    runs-on: ubuntu-latest
    strategy:
      matrix: MATRIX
    steps:
      - run: echo ${{ matrix.python }}
"""


def plan(matrix: str):
    return plan_github(WORKFLOW.replace("MATRIX", matrix), Settings(file="ci.yml"))


def test_a_matrix_from_inputs_or_env_is_expanded_when_the_plan_is_made() -> None:
    entries = [e.matrix for e in plan("${{ fromJSON(inputs.matrix) }}").entries if e.job == "test"]
    assert entries == [
        {"python": "3.11"},
        {"python": "3.12"},
        {"python": "3.13", "extra": "yes"},
    ]
    by_env = plan("${{ fromJSON(env.OS_LIST) }}").entries
    assert [e.matrix for e in by_env if e.job == "test"] == [{"os": "ubuntu-latest"}]


@pytest.mark.parametrize(
    ("matrix", "message"),
    [
        (
            "${{ fromJSON(needs.setup.outputs.matrix) }}",
            "the matrix reads needs.setup, but the job does not need 'setup'",
        ),
        ("${{ fromJSON(steps.x.outputs.matrix) }}", "is not supported yet"),
        ("${{ fromJSON('[1, 2]') }}", "not an object"),
        ("${{ fromJSON('{') }}", "ci.yml:"),
    ],
)
def test_what_cannot_be_expanded_is_named_at_the_matrix(matrix: str, message: str) -> None:
    with pytest.raises(ConfigError, match=r"ci\.yml:19:\d+: ") as caught:
        plan(matrix)
    assert message in str(caught.value)
