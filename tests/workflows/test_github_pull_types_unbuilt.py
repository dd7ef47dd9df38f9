"""``on.pull_request.types`` naming actions SauCI's webhook never builds
(``labeled``, ``closed``...) is said in the plan, not silently never run."""

from __future__ import annotations

from sauci.workflows.github import Settings, plan_github

WORKFLOW = """\
on:
  pull_request:
    types: [opened, labeled, closed]
jobs:
  t:
    runs-on: ubuntu-latest
    steps:
      - run: echo hi
"""


def test_types_the_webhook_never_builds_are_named_in_the_plan() -> None:
    text = plan_github(WORKFLOW, Settings(file="ci.yml")).text()
    assert (
        "note: on.pull_request.types: labeled, closed: never start this workflow on SauCI, "
        "whose webhook builds a pull request only for the actions opened, synchronize, reopened"
    ) in text, text


def test_the_types_sauci_builds_get_no_note() -> None:
    plain = WORKFLOW.replace("[opened, labeled, closed]", "[opened, reopened]")
    assert "never start" not in plan_github(plain, Settings(file="ci.yml")).text()
    single = WORKFLOW.replace("[opened, labeled, closed]", "closed")
    assert "types: closed: never start" in plan_github(single, Settings(file="ci.yml")).text()
