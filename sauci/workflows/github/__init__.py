"""GitHub Actions workflow files (``.github/workflows/*.yml``) read into SauCI's Pipeline.

:func:`plan_github` gives the plan (jobs, matrix entries, skips with their
reasons, notes) with its :class:`~sauci.core.models.Pipeline`; every problem
in the file is raised together as one PipelineError located to file:line:col.
docs/workflows.md lists what is supported.
"""

from __future__ import annotations

from sauci.exceptions import PipelineError
from sauci.workflows.github._plan import Plan, make_plan
from sauci.workflows.github._reading import Problems, parse_yaml
from sauci.workflows.github._settings import Entry, Settings

__all__ = ["Entry", "Plan", "Settings", "plan_github"]


def plan_github(text: str, settings: Settings) -> Plan:
    """The plan for the workflow ``text`` (shown as ``settings.file``)."""
    problems = Problems(settings.file or "workflow")
    doc = parse_yaml(text, problems)
    plan = None if problems else make_plan(doc, settings.file, settings, problems)
    if plan is None or problems:
        if not problems:
            problems.add((1, 1), "the file is empty")
        raise PipelineError(sorted(problems.items, key=lambda p: (p.line, p.column))[:100])
    return plan
