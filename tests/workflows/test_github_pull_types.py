"""``on.pull_request.types``: which pull request actions start a workflow
(GitHub's default: opened, synchronize, reopened), read from the action the
forge's webhook reported and the build records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sauci.core.models import Build
from sauci.core.pull_requests import PullRequest, pull_request_of
from sauci.exceptions import PipelineError
from sauci.triggers._pull_payloads import pull_request_build
from sauci.workflows.github import Settings, plan_github

WORKFLOW = """\
on:
  pull_request:
    types: [opened, reopened]
jobs:
  test:
    runs-on: ubuntu-latest
    steps:
      - run: echo "${{ github.event.action }}"
"""


def plan(text: str, action: str | None):
    event = {"action": action} if action is not None else {}
    github = {"event_name": "pull_request", "base_ref": "main", "event": event}
    return plan_github(text, Settings(file="ci.yml", github=github))


@pytest.mark.parametrize(
    ("action", "skip"),
    [
        ("opened", None),
        ("reopened", None),
        (
            "synchronize",
            "skipped: on.pull_request.types (opened, reopened) does not include 'synchronize'",
        ),
        # A build that does not say (a local `sauci run --event pull_request`) is a new push.
        (
            None,
            "skipped: on.pull_request.types (opened, reopened) does not include 'synchronize'",
        ),
    ],
)
def test_types_decide_which_actions_start_the_workflow(action: str | None, skip: str) -> None:
    (entry,) = plan(WORKFLOW, action).entries
    assert skip == entry.skip


def test_without_types_the_three_default_actions_build() -> None:
    text = WORKFLOW.replace("    types: [opened, reopened]\n", "    branches: [main]\n")
    for action in ("opened", "synchronize", "reopened"):
        assert [None] == [e.skip for e in plan(text, action).entries]


def test_types_do_not_filter_a_push_build() -> None:
    text = WORKFLOW.replace("  pull_request:", "  push:\n  pull_request:")
    (entry,) = plan_github(text, Settings(file="ci.yml")).entries
    assert entry.skip is None


def test_an_unknown_type_is_a_problem_naming_it_at_its_key() -> None:
    with pytest.raises(PipelineError) as caught:
        plan(WORKFLOW.replace("reopened]", "reopened, pushed]"), "opened")
    assert "ci.yml:3:31: on.pull_request.types: 'pushed' is not a pull_request activity type" in (
        str(caught.value)
    )


def test_the_webhooks_action_is_recorded_and_a_forged_one_is_dropped() -> None:
    payload = {
        "action": "reopened",
        "number": 4,
        "pull_request": {
            "number": 4,
            "head": {"ref": "feature", "sha": "a" * 40},
            "base": {"ref": "main", "sha": "b" * 40},
        },
        "repository": {"clone_url": "https://example.com/p.git"},
    }
    request = pull_request_build("github", payload)
    assert "reopened" == pull_request_of(request.params).action
    gitea = pull_request_build("gitea", {**payload, "action": "synchronized"})
    assert "synchronize" == pull_request_of(gitea.params).action
    # A parameter a person sets by hand is no action: only the three that build count.
    forged = {**PullRequest(number=4, base="main", head="f").params(), "SAUCI_PR_ACTION": "closed"}
    assert "" == pull_request_of(forged).action


def test_a_recorded_action_reaches_the_github_context(tmp_path: Path) -> None:
    from sauci.workflows import load_for_build

    (tmp_path / ".github" / "workflows").mkdir(parents=True)
    (tmp_path / ".github" / "workflows" / "ci.yml").write_text(WORKFLOW)
    pr = PullRequest(number=5, base="main", head="feature", action="opened")
    build = Build(
        id=1, repo=str(tmp_path), ref="refs/pull/5/head", sha="c" * 40,
        event="pull_request", params=pr.params(),
    )  # fmt: skip
    (step,) = load_for_build(tmp_path, build).steps
    assert step.condition is None
    assert 'echo \\"opened\\"' in json.dumps(json.loads(step.script())["steps"])


def test_a_misspelt_key_of_an_event_or_a_strategy_is_a_problem_not_a_default() -> None:
    text = """\
run-name: Deploy by ${{ github.actor }}
on:
  push:
    branchez: [main]
  pull_request:
    type: [opened]
jobs:
  test:
    runs-on: ubuntu-latest
    strategy:
      matrix: {x: [1]}
      fail_fast: false
    steps: [{run: echo}]
"""
    with pytest.raises(PipelineError) as caught:
        plan_github(text, Settings(file="ci.yml"))
    assert [
        "ci.yml:4:5: unknown key 'branchez' in on.push (known: branches, branches-ignore,"
        " paths, paths-ignore, tags, tags-ignore)",
        "ci.yml:6:5: unknown key 'type' in on.pull_request (known: branches,"
        " branches-ignore, paths, paths-ignore, types)",
        "ci.yml:12:7: unknown strategy key 'fail_fast' (matrix, fail-fast, max-parallel)",
    ] == str(caught.value).splitlines()
    fixed = text.replace("branchez", "branches").replace("type:", "types:")
    fixed = fixed.replace("fail_fast", "fail-fast")
    made = plan_github(fixed, Settings(file="ci.yml"))
    assert "note: run-name: not used (a SauCI build is named by its commit)" in made.text()
