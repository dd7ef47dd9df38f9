"""Job instances joined into a :class:`Pipeline`: needs from stages or
``needs:``, the server's policy (timeout cap, what its sandboxes can do)."""

from __future__ import annotations

import attrs

from sauci.core.demands import SandboxCapabilities, demand_message, unmet_demands
from sauci.core.models import DEFAULT_TIMEOUT, Pipeline, Step
from sauci.core.step_parts import Condition
from sauci.exceptions import PipelineError
from sauci.workflows.gitlab._artifacts_from import artifact_sources
from sauci.workflows.gitlab._merge import Report
from sauci.workflows.gitlab._plan import JobPlan
from sauci.workflows.gitlab._yaml import Map

__all__ = ["GitLabPlan", "assemble"]

# GitLab's `when` as a condition decided when the step's needs have ended:
# (expression over the status functions, the reason when it is false).
_CONDITIONS = {
    "on_failure": ("failure()", "when: on_failure, and no job before it failed"),
    "always": ("always()", None),
    "manual": ("false", "manual"),
}


@attrs.frozen(kw_only=True)
class GitLabPlan:
    """A ``.gitlab-ci.yml`` planned for one build: the pipeline SauCI runs,
    and the jobs GitLab would leave out of it, each with the reason."""

    pipeline: Pipeline
    left_out: tuple[tuple[str, str], ...] = ()


def _waits_for(plan: JobPlan, earlier: JobPlan) -> bool:
    """Whether ``plan`` waits for a job of an earlier stage.

    A manual job that may fail does not hold later stages back (GitLab's
    default). An ``on_failure`` job is skipped when nothing failed, and
    GitLab's later jobs go on after a skipped job: only the later
    ``on_failure``/``always`` jobs wait for it (when something failed, the
    later ``on_success`` jobs are skipped for that failure anyway).
    """
    if earlier.when == "manual" and earlier.kwargs.get("allow_failure"):
        return False
    return earlier.when != "on_failure" or plan.when in ("on_failure", "always")


def _check_alone(
    plan: JobPlan, jobs: dict[str, Map], report: Report, max_timeout: float | None
) -> None:
    """What can be checked of a job left out of this build: its timeout and its step."""
    timeout = plan.kwargs.get("timeout")
    if max_timeout is not None and timeout is not None and timeout > max_timeout:
        report(
            jobs[plan.job].where("timeout"),
            f"{plan.job}: timeout is more than this server's limit of {max_timeout:g} s",
        )
    try:
        Step(**{**plan.kwargs, "needs": ()})
    except (TypeError, ValueError) as exc:
        report(jobs[plan.job].pos, f"{plan.job}: {exc}")


def assemble(
    plans: list[JobPlan],
    jobs: dict[str, Map],
    left_out: list[tuple[str, str]],
    source: str,
    report: Report,
    *,
    max_timeout: float | None,
    capabilities: SandboxCapabilities | None,
) -> Pipeline | None:
    checked_only = [plan for plan in plans if plan.left_out]
    plans = [plan for plan in plans if not plan.left_out]
    for plan in checked_only:
        _check_alone(plan, jobs, report, max_timeout)
    instances: dict[str, list[str]] = {}
    for plan in plans:
        instances.setdefault(plan.job, []).append(plan.kwargs["name"])
    dropped = dict(left_out)
    steps: list[Step] = []
    for plan in plans:
        kwargs = dict(plan.kwargs)
        if plan.needs is None:
            needs = [
                other.kwargs["name"] for other in plans
                if other.stage < plan.stage and _waits_for(plan, other)
            ]  # fmt: skip
        else:
            needs = []
            for needed, optional, at, _artifacts in plan.needs:
                if needed == plan.job:
                    report(at, f"{plan.job}: needs itself")
                elif needed in instances:
                    needs.extend(instances[needed])
                elif needed in dropped:
                    if not optional:
                        report(
                            at,
                            f"{plan.job}: needs {needed!r}, which is not in this build's "
                            f"pipeline ({dropped[needed]}); mark it optional: true",
                        )
                elif not optional and (needed not in jobs or needed.startswith(".")):
                    report(at, f"{plan.job}: needs {needed!r}, which is not a job")
        kwargs["needs"] = tuple(dict.fromkeys(needs))
        # GitLab: a job starts from the commit and the artifacts it is given, nothing else.
        kwargs["artifacts_from"] = artifact_sources(plan, plans, jobs, report)
        kwargs["own_workspace"] = True
        if plan.when in _CONDITIONS:
            expression, reason = _CONDITIONS[plan.when]
            at = jobs[plan.job].where("when") if "when" in jobs[plan.job] else jobs[plan.job].pos
            kwargs["condition"] = Condition(
                expression=expression, reason=reason, origin=f"{at.file}:{at.line}:{at.column}"
            )
        timeout = kwargs.get("timeout")
        if max_timeout is not None:
            if timeout is not None and timeout > max_timeout:
                report(
                    jobs[plan.job].where("timeout"),
                    f"{plan.job}: timeout is more than this server's limit of {max_timeout:g} s",
                )
                continue
            if timeout is None and max_timeout < DEFAULT_TIMEOUT:
                kwargs["timeout"] = float(max_timeout)
            if "after_timeout" in kwargs:  # after_script's own limit, under the cap too
                kwargs["after_timeout"] = min(kwargs["after_timeout"], float(max_timeout))
        try:
            step = Step(**kwargs)
        except (TypeError, ValueError) as exc:
            report(jobs[plan.job].pos, f"{plan.job}: {exc}")
            continue
        if capabilities is not None:
            sandbox, unmet = unmet_demands(step, capabilities)
            for demand in unmet:
                report(
                    jobs[plan.job].where(demand.key[0]),
                    demand_message(plan.job, sandbox, demand, capabilities, named=False),
                )
        steps.append(step)
    try:
        return Pipeline(steps=steps, source=source)
    except PipelineError as exc:
        for problem in exc.problems:
            report(None, problem.message)
    except (TypeError, ValueError) as exc:
        report(None, str(exc))
    return None
