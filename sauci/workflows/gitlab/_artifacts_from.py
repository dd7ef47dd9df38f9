"""Which earlier jobs' artifacts a GitLab job gets (``Step.artifacts_from``).

GitLab gives a job the artifacts of every job of the earlier stages, of the
jobs it ``needs`` (unless ``artifacts: false``; ``needs: []`` none), or, when
``dependencies:`` is written, of those jobs only (``[]``: none); a
``parallel`` job is all its instances. Each job runs in its own copy of the
build's checkout (``Step.own_workspace``), so these artifacts are all it
gets of the jobs before it, as in GitLab.
"""

from __future__ import annotations

from sauci.workflows.gitlab._merge import Report
from sauci.workflows.gitlab._plan import JobPlan
from sauci.workflows.gitlab._yaml import Map

__all__ = ["artifact_sources"]


def _wanted(plan: JobPlan, plans: list[JobPlan], jobs: dict[str, Map], report: Report) -> list[str]:
    """The jobs ``plan`` takes artifacts from, by name, in order."""
    stages = {other.job: other.stage for other in plans}
    if plan.dependencies is not None:
        needed = None if plan.needs is None else {n[0] for n in plan.needs}
        wanted = []
        for job, at in plan.dependencies:
            if job not in jobs or job.startswith("."):
                report(at, f"{plan.job}: dependencies: {job!r} is not a job")
            elif needed is not None and job not in needed:
                report(at, f"{plan.job}: dependencies: {job!r} must also be in needs")
            elif needed is None and stages.get(job, -1) >= plan.stage:
                report(at, f"{plan.job}: dependencies: {job!r} is not in an earlier stage")
            else:
                wanted.append(job)
        return wanted
    if plan.needs is not None:
        return [job for job, _optional, _at, artifacts in plan.needs if artifacts]
    return list(dict.fromkeys(other.job for other in plans if other.stage < plan.stage))


def artifact_sources(
    plan: JobPlan, plans: list[JobPlan], jobs: dict[str, Map], report: Report
) -> tuple[str, ...]:
    """The steps (each instance of a ``parallel`` job) whose artifacts ``plan``'s step gets."""
    wanted = set(_wanted(plan, plans, jobs, report))
    return tuple(
        other.kwargs["name"]
        for other in plans
        if other.job in wanted and other is not plan and other.kwargs.get("artifacts")
    )
