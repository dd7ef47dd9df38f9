"""Steps added to a running build (Step.expansion) show on the build page as
steps of their own, with their statuses, beside the step that added them."""

from __future__ import annotations

from pathlib import Path

from django.urls import reverse

from sauci import Pipeline, Status, Step, run_pipeline
from sauci.core.config import Settings
from sauci.core.step_parts import Expansion


def _entries(workspace: Path) -> list[Step]:
    return [
        Step(name="tests (3.11)", run="echo ok", needs=["setup"], matrix={"python": "3.11"}),
        Step(name="tests (3.12)", run="exit 3", needs=["setup"], matrix={"python": "3.12"}),
    ]


def test_the_build_page_lists_the_added_steps(tmp_path: Path, store, viewer_client) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    expansion = Expansion(
        describe="job 'tests': matrix from needs.setup.outputs.m", expand=_entries
    )
    pipeline = Pipeline(
        steps=[
            Step(name="setup", run="true", needs=[]),
            Step(name="tests", run="true", needs=["setup"], expansion=expansion),
            Step(name="report", run="echo never", needs=["tests"]),
        ]
    )
    settings = Settings(data_dir=tmp_path / "data", grace=1.0)
    outcome = run_pipeline(pipeline, workspace, store=store, settings=settings, secrets={})
    assert Status.FAILED == outcome.status
    page = viewer_client.get(reverse("sauci:build", args=[outcome.build.id]))
    assert 200 == page.status_code
    html = page.content.decode()
    for text in (
        "tests (3.11)",
        "tests (3.12)",
        "added 2 steps: &#x27;tests (3.11)&#x27;, &#x27;tests (3.12)&#x27;",
        "skipped: needs &#x27;tests (3.12)&#x27;, which failed",
    ):
        assert text in html, text
