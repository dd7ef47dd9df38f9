"""``workflow: rules``: whether GitLab creates a pipeline for this build at all."""

from __future__ import annotations

from pathlib import Path

from sauci.workflows.gitlab._merge import Report
from sauci.workflows.gitlab._rules import decide
from sauci.workflows.gitlab._variables import GitLabContext, predefined
from sauci.workflows.gitlab._yaml import Map

__all__ = ["workflow_left_out"]


def workflow_left_out(
    config: Map, context: GitLabContext, root: Path, report: Report
) -> str | None:
    """Why the whole pipeline is left out of this build, or None when it runs."""
    workflow = config.get("workflow")
    if workflow is None:
        return None
    if not isinstance(workflow, Map):
        report(config.where("workflow"), "workflow: expected a mapping with rules")
        return None
    for key in workflow:
        if key not in ("rules", "name"):
            report(workflow.where(key), f"workflow: {key} is not supported")
    if "rules" not in workflow:
        return None
    variables = {**predefined(context)}
    top = config.get("variables")
    if isinstance(top, Map):
        variables.update({k: str(v) for k, v in top.items() if not isinstance(v, Map)})
    decision = decide("workflow", workflow, variables, context, root, report)
    if decision.variables:
        report(workflow.where("rules"), "workflow: rules: variables is not supported")
    if decision.when not in (None, "always"):
        report(workflow.where("rules"), "workflow: rules: when is always or never")
    if decision.included:
        return None
    return f"workflow: rules leave the pipeline out ({decision.reason})"
