"""The GitHub front end as :data:`sauci.workflows.FRONT_ENDS` calls it."""

from __future__ import annotations

from pathlib import Path

from sauci.workflows._lookup import Loaded, Options
from sauci.workflows.github import Settings, plan_github

__all__ = ["load_github"]


def load_github(path: Path, text: str, options: Options) -> Loaded:
    """The pipeline and plan of the GitHub workflow at ``path`` (its text given)."""
    shown = options.shown_as or str(path)
    settings = Settings(
        workspace=options.workspace or path.parent.parent.parent,
        job=options.job,
        github=options.github,
        actions=options.actions,
        max_timeout=options.max_timeout,
        file=shown,
        path=options.path,
    )
    plan = plan_github(text, settings)
    return Loaded(pipeline=plan.pipeline, kind="github", path=path, plan=plan.text())
