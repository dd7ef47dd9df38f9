"""The GitLab front end as :data:`sauci.workflows.FRONT_ENDS` calls it."""

from __future__ import annotations

from pathlib import Path

import attrs

from sauci.exceptions import ConfigError
from sauci.workflows import Loaded, Options
from sauci.workflows.gitlab import GitLabPlan, context_for_build, plan_gitlab

__all__ = ["load_gitlab_front", "plan_text"]


def load_gitlab_front(path: Path, text: str, options: Options) -> Loaded:
    """The pipeline and plan of the ``.gitlab-ci.yml`` at ``path`` (its text given).

    The build comes from ``options.github`` (``ref``, ``sha``, ``event_name``,
    ``before``: what the caller knows of the build); the commit's message and,
    given ``before``, the changed files are read with git from the workspace; ``options.job`` keeps one job (all
    its instances) and the jobs it needs; a manual job named so runs.
    """
    build = dict(options.github)
    workspace = options.workspace or path.parent
    context = context_for_build(
        workspace,
        ref=str(build.get("ref") or "refs/heads/main"),
        sha=str(build.get("sha") or ""),
        event=str(build.get("event_name") or "push"),
        project=str(build.get("repository") or workspace.name),
        before=str(build.get("before") or ""),
        message=str(build.get("message") or ""),
        merge_request=_merge_request(build),
    )
    plan = plan_gitlab(
        path, text, context=context, max_timeout=options.max_timeout, shown_as=options.shown_as,
        capabilities=options.capabilities,
    )  # fmt: skip
    if options.job:
        plan = _only_job(plan, options.job, options.shown_as or str(path))
    return Loaded(pipeline=plan.pipeline, kind="gitlab", path=path, plan=plan_text(plan))


def _merge_request(build: dict[str, object]) -> dict[str, str] | None:
    """A pull-request build's CI_MERGE_REQUEST_* variables (see sauci.workflows.pull_context)."""
    if build.get("event_name") != "pull_request":
        return None
    from sauci.core.pull_requests import PullRequest
    from sauci.workflows.pull_context import pull_request_variables

    event = build.get("event")
    pull = event.get("pull_request") if isinstance(event, dict) else None
    pull = pull if isinstance(pull, dict) else {}
    number = pull.get("number")
    pr = PullRequest(
        number=number if isinstance(number, int) and number >= 0 else 0,
        base=str(build.get("base_ref") or ""),
        head=str(build.get("head_ref") or ""),
        title=str(pull.get("title") or ""),
    )
    return pull_request_variables(pr, str(build.get("before") or ""))


def _only_job(plan: GitLabPlan, job: str, shown: str) -> GitLabPlan:
    steps = {s.name: s for s in plan.pipeline.steps}
    wanted = [n for n in steps if n == job or n.startswith((f"{job} ", f"{job}: ["))]
    if not wanted:
        raise ConfigError(f"{shown} has no job {job!r} in this build's pipeline")
    keep: set[str] = set()
    todo = list(wanted)
    while todo:
        name = todo.pop()
        if name not in keep:
            keep.add(name)
            todo.extend(steps[name].needs or ())
    # Naming a manual job is the person starting it (as gitlab-ci-local's --manual).
    kept = [
        attrs.evolve(s, condition=None)
        if s.name in wanted and s.condition is not None and s.condition.reason == "manual"
        else s
        for s in plan.pipeline.steps
        if s.name in keep
    ]
    return attrs.evolve(plan, pipeline=attrs.evolve(plan.pipeline, steps=kept))


def plan_text(plan: GitLabPlan) -> str:
    """What ``sauci validate`` prints: each step with what it needs and how it
    runs, then the jobs GitLab would leave out of this build."""
    lines = []
    for step in plan.pipeline.steps:
        line = f"{step.name}"
        if step.needs:
            line += f"  (after {', '.join(step.needs)})"
        if step.condition is not None:
            if step.condition.reason == "manual":
                line += "  [manual: skipped]"
            else:
                line += f"  [when {step.condition.expression}]"
        if step.allow_failure:
            line += "  [may fail]"
        if step.image:
            line += f"  image {step.image}"
        lines.append(line)
    for name, reason in plan.left_out:
        lines.append(f"{name}  left out: {reason}")
    return "".join(line + "\n" for line in lines)
