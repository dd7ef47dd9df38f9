"""The GitHub front end as :data:`sauci.workflows.FRONT_ENDS` calls it."""

from __future__ import annotations

from pathlib import Path

import attrs

from sauci.workflows._for_build import missing_python, workflow_vars
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
        changed_files=options.changed_files,
        inputs=dict(options.github.get("inputs") or {}),
        capabilities=options.capabilities,
        vars=workflow_vars() if options.vars is None else options.vars,
        missing_python=missing_python(),
    )
    plan = plan_github(text, settings)
    if plan.has_path_filters and settings.changed_files is None and options.github.get("before"):
        # A push to a server: its changed files decide on.push.paths (read with
        # git from the workspace, as GitLab's rules: changes do).
        from sauci.workflows._gitfacts import commit_facts

        _message, changed = commit_facts(
            settings.workspace or path.parent,
            str(options.github.get("sha") or ""),
            str(options.github["before"]),
        )
        if changed is not None:
            plan = plan_github(text, attrs.evolve(settings, changed_files=changed))
    return Loaded(pipeline=plan.pipeline, kind="github", path=path, plan=plan.text())
