"""``runs-on`` labels a workflow's jobs ask for become the build's worker labels
(``Pipeline.runs_on``), so ``sauci serve`` with workers sends it to one that
has them; GitHub's hosted and default self-hosted Linux labels ask for nothing."""

from __future__ import annotations

import pytest

from sauci.exceptions import PipelineError
from sauci.workflows.github import Settings, plan_github

WORKFLOW = """\
on: push
jobs:
  lint:
    runs-on: ubuntu-latest
    steps:
      - run: "true"
  test:
    runs-on: ${{ matrix.runner }}
    strategy:
      matrix:
        runner: [[self-hosted, Linux, X64, GPU], [ubuntu-24.04-arm], [windows-latest, big]]
    steps:
      - run: "true"
"""


def plan(text: str):
    return plan_github(text, Settings(file="ci.yml"))


def test_custom_labels_of_jobs_that_run_are_the_builds_worker_labels() -> None:
    made = plan(WORKFLOW)
    assert ("gpu",) == made.pipeline.runs_on  # 'big' is on a Windows entry, which is skipped
    assert "note: runs-on: under sauci serve with workers, a worker with labels gpu" in made.text()


def test_two_expressions_in_one_label_are_one_label() -> None:
    text = WORKFLOW.replace(
        "runs-on: ubuntu-latest", "runs-on: ${{ 'ubuntu' }}-${{ format('{0}', 'latest') }}"
    )
    assert ("gpu",) == plan(text).pipeline.runs_on


def test_hosted_and_default_self_hosted_labels_ask_for_no_worker_label() -> None:
    text = WORKFLOW.replace("GPU]", "ARM64]")
    assert () == plan(text).pipeline.runs_on


@pytest.mark.parametrize("label", ["gpu;touch /tmp/x", "a" * 65, "queue.with space", "$(id)"])
def test_a_label_that_cannot_name_a_queue_is_a_problem_at_runs_on(label: str) -> None:
    text = WORKFLOW.replace("runs-on: ubuntu-latest", f"runs-on: [self-hosted, '{label}']")
    with pytest.raises(PipelineError) as caught:
        plan(text)
    assert "ci.yml:4:14: runs-on: the label" in str(caught.value)


def test_more_labels_than_a_worker_can_listen_on_is_a_problem() -> None:
    labels = ", ".join(f"l{i}" for i in range(9))
    text = WORKFLOW.replace("runs-on: ubuntu-latest", f"runs-on: [{labels}]")
    with pytest.raises(PipelineError, match="ask for 10 worker labels, more than 8"):
        plan(text)
