"""A merged ``.gitlab-ci.yml`` turned into SauCI steps for one build.

Jobs are decided (rules, only/except, when: never), expanded (parallel),
ordered (stages, or needs where given) and turned into :class:`Step`
keyword arguments; jobs GitLab would leave out of this build's pipeline are
listed with the reason.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs

from sauci.core.models import DEFAULT_AFTER_TIMEOUT
from sauci.workflows.gitlab._jobs import JOB_KEYS, UNSUPPORTED_JOB_KEYS, apply_defaults, entries
from sauci.workflows.gitlab._keys import (
    read_allow_failure,
    read_artifacts,
    read_cache,
    read_image,
    read_retry,
    read_script,
    read_services,
    read_timeout,
)  # fmt: skip
from sauci.workflows.gitlab._merge import Report
from sauci.workflows.gitlab._rules import WHENS, Decision, decide
from sauci.workflows.gitlab._script import SHELL, after_script, job_script
from sauci.workflows.gitlab._variables import (
    GitLabContext,
    bad_name,
    expand,
    expand_parts,
    predefined,
    slug,
)  # fmt: skip
from sauci.workflows.gitlab._yaml import Map, Pos, Seq

__all__ = ["JobPlan", "plan_jobs", "read_variables"]

DEFAULT_STAGES = ("build", "test", "deploy")


@attrs.define(kw_only=True)
class JobPlan:
    """One instance of a job: its step's keyword arguments and how it runs."""

    job: str
    stage: int
    when: str
    kwargs: dict[str, Any]
    needs: list[tuple[str, bool, Pos, bool]] | None  # (job, optional, where, artifacts)
    # None: by stage. ``dependencies:`` (job, where); None: not given
    dependencies: list[tuple[str, Pos]] | None = None
    left_out: bool = False  # checked, but not a step of this build


def read_variables(value: Any, where: Pos, report: Report) -> dict[str, tuple[str, bool]]:
    """``variables:`` as name -> (raw value, expand it)."""
    if value is None:
        return {}
    if not isinstance(value, Map):
        report(where, "variables: expected a mapping of names to values")
        return {}
    out: dict[str, tuple[str, bool]] = {}
    for name, item in value.items():
        at = value.where(name)
        if (problem := bad_name(name)) is not None:
            report(at, f"variables: {problem}")
            continue
        expands = True
        if isinstance(item, Map):
            expands = item.get("expand", True) is not False
            item = item.get("value", "")
        if isinstance(item, bool | Map | Seq):
            report(at, f"variables: {name}: expected text or a number")
            continue
        out[name] = ("" if item is None else str(item), expands)
    return out


def plan_jobs(
    jobs: dict[str, Map], config: Map, context: GitLabContext, root: Path, report: Report
) -> tuple[list[JobPlan], list[tuple[str, str]]]:
    """The job instances of this build in pipeline order, and the jobs left out (with why)."""
    stages = _stages(config, report)
    top = read_variables(config.get("variables"), config.where("variables"), report)
    planned: list[JobPlan] = []
    left_out: list[tuple[str, str]] = []
    for name, raw in jobs.items():
        if name.startswith("."):
            continue
        job = apply_defaults(name, raw, config, report)
        _check_keys(name, job, report)
        stage = job.get("stage", "test")
        if stage not in stages:
            report(job.where("stage"), f"{name}: stage {stage!r} is not in stages: {list(stages)}")
            continue
        inherit = job.get("inherit")
        inherited = inherit.get("variables", True) if isinstance(inherit, Map) else True
        chosen = {
            k: v
            for k, v in top.items()
            if inherited is True or (isinstance(inherited, list) and k in inherited)
        }
        own = read_variables(job.get("variables"), job.where("variables"), report)
        base = {
            **predefined(context),
            "CI_JOB_NAME": name,
            "CI_JOB_NAME_SLUG": slug(name),
            "CI_JOB_STAGE": stage,
        }
        raw_known = {**base, **{k: v for k, (v, _) in {**chosen, **own}.items()}}
        known = {
            **base,
            **{k: expand(v, raw_known) if e else v for k, (v, e) in {**chosen, **own}.items()},
        }
        decision = decide(name, job, known, context, root, report)
        when = decision.when or job.get("when", "on_success")
        reason = None if decision.included else decision.reason
        if reason is None and "rules" not in job and when == "never":
            reason = "when: never"
        if reason is not None:
            # Left out of this build, but checked all the same, as GitLab does.
            left_out.append((name, reason))
            when = "on_success"
        elif when == "delayed":
            report(job.where("when"), f"{name}: when: delayed (delayed jobs) is not supported")
            continue
        elif when not in WHENS or when == "never":
            report(
                job.where("when"),
                f"{name}: when: expected one of on_success, on_failure, always, manual",
            )
            continue
        for entry_name, entry_vars in entries(name, job, report):
            variables = {**chosen, **own, **{k: (v, True) for k, v in entry_vars.items()}}
            variables.update({k: (v, True) for k, v in decision.variables.items()})
            kwargs = _step(
                name, entry_name, job, base, variables, decision, when, report, reason is not None
            )
            if entry_vars:
                kwargs["matrix"] = {k: v for k, v in entry_vars.items() if k != "CI_NODE_TOTAL"}
            planned.append(JobPlan(
                job=name, stage=stages.index(stage), when=when, kwargs=kwargs,
                needs=_needs(name, job, report), left_out=reason is not None,
                dependencies=_dependencies(name, job, report),
            ))  # fmt: skip
    planned.sort(key=lambda p: p.stage)
    return planned, left_out


def _stages(config: Map, report: Report) -> list[str]:
    value = config.get("stages", list(DEFAULT_STAGES))
    if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
        report(config.where("stages"), "stages: expected a list of stage names")
        value = list(DEFAULT_STAGES)
    names = [s for s in value if s not in (".pre", ".post")]
    return [".pre", *dict.fromkeys(names), ".post"]


def _check_keys(name: str, job: Map, report: Report) -> None:
    for key in job:
        if key in UNSUPPORTED_JOB_KEYS:
            report(job.where(key), f"{name}: {key} ({UNSUPPORTED_JOB_KEYS[key]}) is not supported")
        elif key == "type":
            report(job.where(key), f"{name}: type: is the old name of stage:; write stage:")
        elif key not in JOB_KEYS:
            report(job.where(key), f"{name}: unknown key {key!r}")
    if "script" not in job and "trigger" not in job:
        report(job.pos, f"{name}: a job needs a script")


class _Without(Mapping[str, str]):
    """``mapping`` without the key ``left_out``, read in place."""

    def __init__(self, mapping: Mapping[str, str], left_out: str) -> None:
        self._mapping = mapping
        self._left_out = left_out

    def __getitem__(self, key: str) -> str:
        if key == self._left_out:
            raise KeyError(key)
        return self._mapping[key]

    def __contains__(self, key: object) -> bool:
        return key != self._left_out and key in self._mapping

    def __iter__(self) -> Iterator[str]:
        return (k for k in self._mapping if k != self._left_out)

    def __len__(self) -> int:
        return len(self._mapping) - (self._left_out in self._mapping)


def _env(
    variables: dict[str, tuple[str, bool]], base: dict[str, str]
) -> tuple[dict[str, str], dict[str, list[str | tuple[str]]]]:
    """(values known now, values that need the step's own runtime variables)."""
    raw = {**base, **{k: v for k, (v, _) in variables.items()}}
    env: dict[str, str] = dict(base)
    runtime: dict[str, list[str | tuple[str]]] = {}
    for name, (value, expands) in variables.items():
        # Every variable but this one, as a view: a copy for each was
        # quadratic (a pushed file's 70,000 variables: hours of the server).
        others = _Without(raw, name)
        parts: list[str | tuple[str]] = expand_parts(value, others) if expands else [value]
        if all(isinstance(p, str) for p in parts):
            env[name] = "".join(p for p in parts if isinstance(p, str))
        else:
            runtime[name] = parts
            env.pop(name, None)
    return env, runtime


def _step(
    name: str,
    entry: str,
    job: Map,
    base: dict[str, str],
    variables: dict[str, tuple[str, bool]],
    decision: Decision,
    when: str,
    report: Report,
    left_out: bool = False,
) -> dict[str, Any]:
    env, runtime = _env(variables, {**base, "CI_JOB_NAME": entry, "CI_JOB_NAME_SLUG": slug(entry)})
    known = dict(env)
    script = read_script(job.get("script"), job.where("script"), "script", report)
    before = read_script(
        job.get("before_script"), job.where("before_script"), "before_script", report
    )
    after = read_script(job.get("after_script"), job.where("after_script"), "after_script", report)
    allow: bool = False
    codes: tuple[int, ...] = ()
    if "allow_failure" in job:
        allow, codes = read_allow_failure(job["allow_failure"], job.where("allow_failure"), report)
    elif when == "manual" and "rules" not in job:
        allow = True  # GitLab: a manual job does not block the jobs after it
    if decision.allow_failure is not None:
        allow, codes = decision.allow_failure, ()
    kwargs: dict[str, Any] = {
        "name": entry,
        # exit_codes: those codes become success in the script, any other fails
        "run": job_script(before, script, runtime, codes),
        "env": env,
        "shell": SHELL,
        "allow_failure": allow and not codes,
    }
    if "timeout" in job and (seconds := read_timeout(job["timeout"], job.where("timeout"), report)):
        kwargs["timeout"] = seconds
    if after:
        kwargs["after_run"] = after_script(after, runtime)
        kwargs["after_timeout"] = _after_timeout(name, known, job, report)
    if "retry" in job:
        retries, codes_, kinds = read_retry(job["retry"], job.where("retry"), report)
        # Nothing SauCI can see matches (when: [api_failure]): never retried.
        kwargs["retries"] = retries if codes_ or kinds else 0
        kwargs["retry_on"], kwargs["retry_when"] = codes_, kinds
    if job.get("image") is not None:
        image = read_image(job["image"], job.where("image"), known, report, strict=not left_out)
        kwargs["image"] = image or None
    if job.get("services"):
        kwargs["services"] = read_services(job["services"], job.where("services"), known, report)
    if job.get("cache"):
        kwargs["cache"] = read_cache(job["cache"], job.where("cache"), known, report)
    if "artifacts" in job:
        paths, junit = read_artifacts(job["artifacts"], job.where("artifacts"), known, report)
        kwargs["artifacts"], kwargs["junit"] = paths, junit
    return kwargs


def _after_timeout(name: str, variables: dict[str, str], job: Map, report: Report) -> float:
    """``after_script``'s own limit: ``RUNNER_AFTER_SCRIPT_TIMEOUT`` (GitLab's
    variable for it), at most GitLab's default of 5 minutes, which it is unset."""
    value = variables.get("RUNNER_AFTER_SCRIPT_TIMEOUT")
    if not value:
        return DEFAULT_AFTER_TIMEOUT
    own = job.get("variables")
    key = "RUNNER_AFTER_SCRIPT_TIMEOUT"
    where = own.where(key) if isinstance(own, Map) and key in own else job.pos
    seconds = read_timeout(
        value,
        where,
        lambda at, text: report(
            at, f"{name}: RUNNER_AFTER_SCRIPT_TIMEOUT: {text.removeprefix('timeout: ')}"
        ),
    )
    return min(seconds, DEFAULT_AFTER_TIMEOUT) if seconds else DEFAULT_AFTER_TIMEOUT


def _dependencies(name: str, job: Map, report: Report) -> list[tuple[str, Pos]] | None:
    if "dependencies" not in job:
        return None
    value = job["dependencies"]
    if not isinstance(value, Seq) or not all(isinstance(item, str) for item in value):
        report(job.where("dependencies"), f"{name}: dependencies: expected a list of job names")
        return None
    return [(item, value.where(index)) for index, item in enumerate(value)]


def _needs(name: str, job: Map, report: Report) -> list[tuple[str, bool, Pos, bool]] | None:
    if "needs" not in job:
        return None
    value, where = job["needs"], job.where("needs")
    if not isinstance(value, Seq):
        report(where, f"{name}: needs: expected a list of jobs")
        return None
    out: list[tuple[str, bool, Pos, bool]] = []
    for index, item in enumerate(value):
        at = value.where(index)
        optional = False
        artifacts = True
        if isinstance(item, Map):
            unsupported = [k for k in item if k not in ("job", "optional", "artifacts")]
            for key in unsupported:
                report(item.where(key), f"{name}: needs: {key} is not supported")
            if unsupported:
                continue
            optional = item.get("optional") is True
            artifacts = item.get("artifacts", True) is not False
            item = item.get("job")
        if not isinstance(item, str):
            report(at, f"{name}: needs: expected a job name or {{job: name}}")
            continue
        out.append((item, optional, at, artifacts))
    return out
