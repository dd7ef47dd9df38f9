"""A planned .gitlab-ci.yml as plain data, for golden files and assertions."""

from __future__ import annotations

from typing import Any

from sauci.workflows.gitlab import GitLabPlan

_SHOWN_ENV_PREFIXES = ("CI_JOB_NAME", "CI_NODE_")


def plan_dict(plan: GitLabPlan) -> dict[str, Any]:
    """The parts of a plan a person checks: jobs in order, what each runs on
    and after, matrix entries, and the jobs left out with the reason."""
    jobs = []
    for step in plan.pipeline.steps:
        job: dict[str, Any] = {"name": step.name, "needs": list(step.needs or ())}
        condition = getattr(step, "condition", None)
        if condition is not None:
            job["condition"] = condition.expression
            if condition.reason:
                job["condition_reason"] = condition.reason
        if step.matrix:
            job["matrix"] = dict(step.matrix)
        for key in ("image", "allow_failure", "retries", "retry_on", "retry_when", "timeout"):
            value = getattr(step, key)
            default = {
                "image": None, "allow_failure": False, "retries": 0, "retry_on": (),
                "retry_when": (),
            }  # fmt: skip
            if key == "timeout" and value == 3600.0:
                continue
            if value != default.get(key):
                job[key] = list(value) if isinstance(value, tuple) else value
        if step.services:
            job["services"] = [f"{s.name}={s.image}" for s in step.services]
        if step.cache is not None:
            job["cache"] = {"key": step.cache.key, "paths": list(step.cache.paths)}
        if step.artifacts:
            job["artifacts"] = list(step.artifacts)
        if step.junit:
            job["junit"] = list(step.junit)
        job["env"] = {
            k: v
            for k, v in sorted(step.env.items())
            if not k.startswith("CI") or k.startswith(_SHOWN_ENV_PREFIXES)
            if k not in ("GITLAB_CI",)
        }
        job["commands"] = [
            line for line in step.run if not line.startswith(("printf ", "export CI_"))
        ]
        if step.after_run:
            job["after_run"] = [
                line for line in step.after_run if not line.startswith(("printf ", "export CI_"))
            ]
            if step.after_timeout != 300.0:
                job["after_timeout"] = step.after_timeout
        if step.artifacts_from:
            job["artifacts_from"] = list(step.artifacts_from)
        jobs.append(job)
    return {"jobs": jobs, "left_out": [list(item) for item in plan.left_out]}
