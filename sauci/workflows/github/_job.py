"""One job of a workflow: its matrix entries, each made into one SauCI step."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from sauci.core.artifact_inputs import INBOX
from sauci.core.models import DEFAULT_TIMEOUT, Step
from sauci.core.paths import safe_name
from sauci.core.step_parts import Cache, Condition
from sauci.workflows.github import _matrix_dynamic
from sauci.workflows.github._actions import JobParts, action_name
from sauci.workflows.github._container import container_shell, read_container
from sauci.workflows.github._context import (
    condition_source,
    evaluate_static,
    fill_static,
    is_runtime,
)
from sauci.workflows.github._demands import check_demands
from sauci.workflows.github._driver import DRIVER, driver_python
from sauci.workflows.github._job_fields import (
    job_defaults,
    job_outputs,
    no_effect_notes,
    runs_on_labels,
    strategy_problems,
    worker_labels,
    workflow_concurrency,
)
from sauci.workflows.github._matrix import expand_matrix, matrix_text
from sauci.workflows.github._matrix_outputs import driver_safe_name as _safe_name
from sauci.workflows.github._matrix_outputs import matrix_outputs
from sauci.workflows.github._matrix_static import static_matrix as _static_matrix
from sauci.workflows.github._naming import entry_name as _name
from sauci.workflows.github._naming import truthy as _truthy
from sauci.workflows.github._reading import LList, LMap, Problems, where
from sauci.workflows.github._settings import Entry, Settings
from sauci.workflows.github._steps import driver_step

__all__ = ["job_entries", "job_env", "job_needs"]

_JOB_KEYS = frozenset(
    {
        "name",
        "needs",
        "runs-on",
        "if",
        "strategy",
        "env",
        "defaults",
        "steps",
        "timeout-minutes",
        "continue-on-error",
        "outputs",
        "permissions",
        "concurrency",
        "environment",
        "container",
        "services",
    }
)
_UNSUPPORTED_JOB_KEYS = {
    "uses": "reusable workflows ('uses' on a job) are not supported",
}
_SECRET = re.compile(r"\bsecrets\.([A-Za-z_][A-Za-z0-9_]*)")
_OTHER_OS = re.compile(r"(windows|macos|osx)", re.IGNORECASE)


def job_env(value: Any, contexts: Mapping[str, Any], problems: Problems) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, LMap):
        problems.add(where(value), "'env' must be a mapping")
        return {}
    out = {}
    for key, item in value.items():
        text = "true" if item is True else "false" if item is False else matrix_text(item)
        try:
            out[key] = fill_static(text, contexts, where(item, value.at(key)))
        except Exception as exc:
            problems.add(value.at(key), str(exc))
    return out


def job_needs(job: Any) -> list[str]:
    needs = job.get("needs") if isinstance(job, Mapping) else None
    if needs is None:
        return []
    return [str(n) for n in (needs if isinstance(needs, list) else [needs])]


def job_entries(
    job_id: str,
    job: Any,
    doc: LMap,
    github: dict[str, Any],
    wf_env: dict[str, str],
    names_of: dict[str, list[str]],
    settings: Settings,
    problems: Problems,
    given: list[dict[str, Any]] | None = None,
) -> list[tuple[Entry, Step | None]]:
    """The job's entries and their steps; ``given``: these matrix combinations (a
    matrix known only at run time, _matrix_dynamic), not those the file writes."""
    if not isinstance(job, LMap):
        problems.add(doc["jobs"].at(job_id), f"the job {job_id!r} must be a mapping")
        return []
    for key in job:
        if key in _UNSUPPORTED_JOB_KEYS:
            problems.add(where(key), _UNSUPPORTED_JOB_KEYS[key])
        elif key not in _JOB_KEYS:
            problems.add(where(key), f"unknown job key {key!r}")
    if not isinstance(job.get("steps"), LList) or not job["steps"]:
        if "uses" not in job:
            problems.add(job.at("steps"), f"the job {job_id!r} has no 'steps'")
        return []
    strategy = job.get("strategy") or LMap()
    if not isinstance(strategy, LMap):
        problems.add(
            job.at("strategy"), "'strategy' must be a mapping (matrix, fail-fast, max-parallel)"
        )
        strategy = LMap()
    strategy_problems(strategy, problems)
    combos: list[dict[str, Any]] = [{}]
    matrix = strategy.get("matrix") if isinstance(strategy, Mapping) else None
    base_ctx = {
        "github": github,
        "env": wf_env,
        "inputs": github["event"].get("inputs", {}),
        "vars": dict(settings.vars),
        "secrets": {},
        "runner": _RUNNER,
    }
    dynamic = None if given is not None else _matrix_dynamic.dynamic_source(matrix)
    if dynamic is not None:  # from the outputs of the jobs it needs: expanded at run time
        for problem in _matrix_dynamic.needs_problems(matrix, job_needs(job), doc.get("jobs")):
            problems.add(strategy.at("matrix"), problem)
    elif given is not None:
        combos = given
    elif matrix is not None:
        try:
            combos = expand_matrix(_static_matrix(matrix, base_ctx, strategy.at("matrix")))
        except Exception as exc:  # MatrixError, the expression language's errors
            problems.add(strategy.at("matrix"), str(exc))
        # On a problem the steps are still checked, once, for their own problems.
    job_notes: list[str] = []
    limit = _matrix_dynamic.max_parallel(strategy, job_id, problems, job_notes)
    # GitHub's default: one failed entry cancels the others of the job.
    fail_fast = matrix is not None and not (
        isinstance(strategy, Mapping) and strategy.get("fail-fast") in (False, "false")
    )
    if "outputs" in job and matrix is not None:
        job_notes.append(
            "job outputs of a matrix job: the entry that ends last wins (as on GitHub); "
            "a job's if: does not see them"
        )
    needs = job_needs(job)
    out: list[tuple[Entry, Step | None]] = []
    names_of[job_id] = []
    taken: set[str] = set()
    for index, combo in enumerate(combos):
        ctx = {
            **base_ctx,
            "matrix": combo,
            "strategy": {
                "fail-fast": strategy.get("fail-fast", True)
                if isinstance(strategy, Mapping)
                else True,
                "job-index": index,
                "job-total": len(combos),
                "max-parallel": len(combos),
            },
        }
        entry = _entry(
            job_id, job, combo, ctx, needs, names_of, taken, settings, problems, doc, job_notes
        )
        if entry is None:
            continue
        out.append(entry)
    # Jobs that need this one wait for its entries that run here; an entry
    # skipped because SauCI cannot run it (another OS, a missing Python)
    # does not hold them back, unless every entry is skipped.
    if fail_fast or limit:
        group = job_id if fail_fast else None
        out = [
            (e, attrs.evolve(s, fail_fast_group=group, max_parallel=limit) if s else s)
            for e, s in out
        ]
    running = [e.name for e, s in out if s is not None and e.skip is None]
    names_of[job_id] = running or [e.name for e, s in out if s is not None]
    if dynamic is not None:  # one placeholder step; its entries when its needs have ended

        def again(combos: Any, names: Any, problems: Problems) -> list[tuple[Entry, Step | None]]:
            return job_entries(job_id, job, doc, github, wf_env, names, settings, problems, combos)

        at = (settings.file, *strategy.at("matrix"))
        out = _matrix_dynamic.placeholder(out, job_id, job, at, base_ctx, needs, names_of, again)
    return out


_RUNNER = {"os": "Linux", "arch": "X64", "name": "sauci", "temp": "", "tool_cache": ""}


def _entry(
    job_id: str,
    job: LMap,
    combo: dict[str, Any],
    ctx: dict[str, Any],
    needs: list[str],
    names_of: dict[str, list[str]],
    taken: set[str],
    settings: Settings,
    problems: Problems,
    doc: LMap,
    job_notes: list[str],
) -> tuple[Entry, Step | None] | None:
    problems.local_actions.uses = 0  # the limit on local action uses is per entry
    env = dict(ctx["env"])
    env.update(job_env(job.get("env"), ctx, problems))
    ctx = {**ctx, "env": env}
    box = read_container(job, ctx, problems)
    env = {**box.env, **env}  # the container's env, under the workflow's and job's
    name = _name(job_id, job, combo, ctx, problems)
    base, n = name, 2
    while name in taken:
        name, n = f"{base} #{n}", n + 1
    taken.add(name)
    skip = None
    runs_on = job.get("runs-on")
    if runs_on is None:
        problems.add((job.line, job.col), f"the job {job_id!r} has no 'runs-on'")
        return None
    labels = runs_on_labels(runs_on, ctx, job.at("runs-on"), problems)
    if any(_OTHER_OS.search(label) for label in labels):
        skip = f"skipped: runs-on {', '.join(labels)}: SauCI runs Linux jobs only"
    wanted = () if skip else worker_labels(labels, job.at("runs-on"), problems)
    condition: Condition | None = None
    origin = ""
    if "if" in job:
        source = condition_source(job["if"])
        line, col = job.at("if")
        origin = f"{settings.file}:{line}:{col}"
        if is_runtime(source) or "needs" in source:
            condition = Condition(
                expression=source,
                origin=origin,
                needs={n: tuple(names_of.get(n, ())) for n in needs},
                contexts={k: ctx[k] for k in ("github", "matrix", "env", "runner", "strategy")},
                outputs={n: f".sauci-gha/outputs/{_safe_name(n)}.json" for n in needs},
            )
        else:
            try:
                if not _truthy(evaluate_static(source, ctx, (line, col))):
                    skip = skip or f"skipped: 'if: {source}' is false"
            except Exception as exc:
                problems.add((line, col), str(exc))
    defaults = job_defaults(doc, job, problems)
    parts = JobParts(skip=skip, missing_python=settings.missing_python)
    driver_steps = []
    for index, raw in enumerate(job["steps"]):
        if not isinstance(raw, LMap):
            at = job["steps"].positions[index]
            problems.add(at, "a step must be a mapping with 'run' or 'uses'")
            continue
        driver_steps += driver_step(
            raw,
            index,
            ctx,
            parts,
            problems,
            defaults=defaults,
            workspace=settings.workspace,
            path=settings.path,
            actions=settings.actions,
        )
    uses_alls_green = any(
        isinstance(s, Mapping) and action_name(str(s.get("uses", "")))[0] == "re-actors/alls-green"
        for s in job["steps"]
    )
    if uses_alls_green and condition is not None:
        condition = None  # its job passes only when every job it needs passed: SauCI's default
    skip = skip or parts.skip
    parts.notes += no_effect_notes(job)
    # GitHub's contexts for a job's group: github, inputs, vars, strategy, matrix.
    group = workflow_concurrency(job, ctx, problems) if "concurrency" in job else None
    if group is not None:
        parts.notes.append(
            f"concurrency: group {group[0]!r}: "
            + ("cancels a running job of the group" if group[1] else "waits for a running one")
        )
    entry = Entry(
        job=job_id,
        name=name,
        matrix={k: matrix_text(v) for k, v in combo.items()},
        steps=tuple(s["name"] for s in driver_steps),
        skip=skip,
        notes=tuple(job_notes + parts.notes + box.notes),
        condition=condition.expression if condition is not None and skip is None else None,
        labels=wanted,
    )
    timeout = DEFAULT_TIMEOUT
    if "timeout-minutes" in job:
        minutes = job["timeout-minutes"]
        if isinstance(minutes, (int, float)) and minutes > 0:
            timeout = float(minutes) * 60
        else:
            problems.add(job.at("timeout-minutes"), "timeout-minutes must be a positive number")
    if settings.max_timeout is not None:
        timeout = min(timeout, settings.max_timeout)
    allow_failure = job.get("continue-on-error") is True
    if isinstance(job.get("continue-on-error"), str):
        try:
            allow_failure = _truthy(
                evaluate_static(
                    condition_source(job["continue-on-error"]), ctx, job.at("continue-on-error")
                )
            )
        except Exception as exc:
            problems.add(job.at("continue-on-error"), str(exc))
    if skip is not None:
        condition = Condition(expression="false", origin=origin, reason=skip)
    # The secrets the job names reach it as variables (the server's secrets
    # file or SAUCI_SECRET_*, masked in logs), as a .sauci.yml step's do.
    secrets = sorted(set(_SECRET.findall(json.dumps(job))) - {"GITHUB_TOKEN"})
    spec = {
        "job": job_id,
        "file": settings.file,
        "workflow": ctx["github"]["workflow"],
        "event_name": ctx["github"]["event_name"],
        "repository": ctx["github"]["repository"],
        "env": env,
        "contexts": {
            k: ctx[k] for k in ("github", "matrix", "strategy", "runner", "inputs", "vars")
        },
        "expr_path": str(Path(__file__).resolve().parents[3]),
        "steps": driver_steps,
        "secrets": secrets,
        "junit": settings.pytest_junit,
        "needs": needs,
        "outputs": job_outputs(job, problems),
        "artifacts_in": f"{INBOX}/{safe_name(name)}",  # download-artifact's source
        "services": dict(box.context),  # job.services.<id>
    }
    passed_on = matrix_outputs(job_id, job, name, bool(combo), needs, names_of, doc.get("jobs"))
    spec.update(passed_on.spec)
    cache = None
    if parts.cache is not None:
        paths, key, restore = parts.cache
        cache = Cache(paths=paths, key=key, restore_keys=restore)
    made = Step(
        name=name,
        run=json.dumps(spec, indent=1),
        # In an image (the job's container, or the Docker sandbox's default
        # image for a job with services), that image's python3.
        shell=container_shell(DRIVER)
        if box.image or box.services
        else (driver_python(), "-I", "-c", DRIVER),
        image=box.image,
        services=box.services,
        # On Docker (a container or services), the driver imports SauCI's
        # expressions from a read-only mount (sauci/sandbox/_library_bind.py).
        env={"SAUCI_LIBRARY": "1", "SAUCI_JOB_IMAGE": box.image or ""}
        if box.image or box.services
        else {},
        needs=tuple(n for need in needs for n in names_of.get(need, ())),
        timeout=timeout,
        allow_failure=allow_failure,
        matrix={k: matrix_text(v) for k, v in combo.items()},
        # GITHUB_STEP_SUMMARY, as the job driver keeps it (when a step wrote one).
        artifacts=(
            *parts.artifacts,
            *passed_on.artifacts,  # a matrix entry's outputs
            f".sauci-gha/{_safe_name(job_id)}/step-summary.md",
            f".sauci-gha/{_safe_name(job_id)}/artifacts/*.json",  # upload-artifact's indexes
        ),
        download_artifacts=parts.download or passed_on.download,
        # The workflow's own reports, and the one pytest writes for SauCI (jobdriver).
        junit=(*parts.junit, f".sauci-gha/{_safe_name(job_id)}/junit/*.xml"),
        cache=cache,
        condition=condition,
        secrets=secrets,
        concurrency=group,
    )
    check_demands(made, job_id, job, settings.capabilities, problems)
    return entry, made
