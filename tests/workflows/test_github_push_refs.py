"""on.push branches/tags filters and their -ignore forms: which pushes start the workflow."""

from __future__ import annotations

import pytest

from sauci.workflows.github import Settings, plan_github
from sauci.workflows.github._refs import ref_skip


@pytest.mark.parametrize(
    ("filters", "ref", "runs"),
    [
        ({}, "refs/tags/v1.0", True),
        ({}, "refs/heads/feature", True),
        ({"branches": ["main"]}, "refs/heads/main", True),
        ({"branches": ["main"]}, "refs/heads/feature", False),
        ({"branches": ["main"]}, "refs/tags/v1.0", False),  # only branches: no tag runs
        ({"tags": ["v*"]}, "refs/tags/v1.0", True),
        ({"tags": ["v*"]}, "refs/tags/release-1", False),
        ({"tags": ["v*"]}, "refs/heads/main", False),  # only tags: no branch runs
        ({"branches": ["main"], "tags": ["v*"]}, "refs/heads/main", True),
        ({"branches": ["main"], "tags": ["v*"]}, "refs/tags/v2", True),
        ({"branches": ["main"], "tags": ["v*"]}, "refs/heads/dev", False),
        ({"branches-ignore": ["wip/*"]}, "refs/heads/wip/a", False),
        ({"branches-ignore": ["wip/*"]}, "refs/heads/main", True),
        ({"branches-ignore": ["wip/*"]}, "refs/tags/v1", False),
        ({"branches": ["main"], "tags-ignore": ["*-rc*"]}, "refs/tags/v1-rc1", False),
        ({"branches": ["main"], "tags-ignore": ["*-rc*"]}, "refs/tags/v1", True),
        ({"branches": ["releases/*"]}, "refs/heads/releases/1.x", True),
        (
            {"branches": ["releases/*"]},
            "refs/heads/releases/1.x/fix",
            False,
        ),  # * stays in a segment
        ({"branches": ["releases/**", "!releases/**-alpha"]}, "refs/heads/releases/2-alpha", False),
        ({"tags": ["v[0-9]*"]}, "refs/tags/v[0-9]x", True),  # [ is literal here, never a regex
    ],
)
def test_pushes_follow_githubs_filter_rules(filters: dict, ref: str, runs: bool) -> None:
    assert runs == (ref_skip(ref, filters) is None)


WORKFLOW = """\
on:
  push:
    branches: [main]
    tags: ["v*"]
jobs:
  release:
    runs-on: ubuntu-latest
    steps:
      - run: echo ${{ github.ref_name }}
"""


def plan_for(ref: str, text: str = WORKFLOW):
    return plan_github(text, Settings(github={"ref": ref, "event_name": "push"}))


def test_a_tag_push_starts_a_workflow_filtering_tags() -> None:
    plan = plan_for("refs/tags/v1.2")
    assert plan.pipeline.steps[0].when.matches(branch="refs/tags/v1.2", event="push")


def test_a_refused_push_skips_every_step_on_the_server_and_says_why() -> None:
    plan = plan_for("refs/tags/nightly")
    step = plan.pipeline.steps[0]
    assert not step.when.matches(branch="refs/tags/nightly", event="push")
    assert any("'nightly' matches none of its patterns" in n for n in plan.notes)
    # A manual build (workflow_dispatch is not filtered by push's filters).
    manual = plan_github(
        WORKFLOW.replace("on:\n", "on:\n  workflow_dispatch:\n"),
        Settings(github={"ref": "refs/heads/feature", "event_name": "workflow_dispatch"}),
    )
    assert manual.pipeline.steps[0].when.matches(branch="feature", event="manual")


def test_a_filter_and_its_ignore_form_together_is_an_error() -> None:
    from sauci.exceptions import ConfigError

    text = WORKFLOW.replace('tags: ["v*"]', 'tags: ["v*"]\n    tags-ignore: ["v0*"]')
    with pytest.raises(ConfigError, match="both 'tags' and 'tags-ignore'"):
        plan_for("refs/heads/main", text)
