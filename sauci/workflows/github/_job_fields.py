"""Fields of a job read as they are: its ``outputs``, ``runs-on`` labels and ``defaults.run``;
and the workflow's ``concurrency``."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from sauci.workflows.github._context import (
    EXPRESSION,
    condition_source,
    evaluate_static,
    fill_static,
)
from sauci.workflows.github._matrix import matrix_text
from sauci.workflows.github._reading import LMap, Problems, where
from sauci.workflows.github._steps import shell_template

__all__ = [
    "job_defaults",
    "job_outputs",
    "no_effect_notes",
    "runs_on_labels",
    "strategy_problems",
    "worker_labels",
    "workflow_concurrency",
]

# Labels every Linux machine SauCI runs on answers to: GitHub's hosted Linux
# runners (ubuntu-latest, ubuntu-24.04-arm, larger runners) and the default
# labels of a self-hosted one. Any other label asks for a worker that has it.
_ANY_LINUX = re.compile(r"ubuntu-.*|self-hosted|linux|x64|arm64|arm", re.IGNORECASE)


def job_outputs(job: LMap, problems: Problems) -> dict[str, str]:
    """The job's ``outputs``, as written: the job driver evaluates them when the job ends."""
    outputs = job.get("outputs")
    if outputs is None:
        return {}
    if not isinstance(outputs, LMap):
        problems.add(job.at("outputs"), "'outputs' must be a mapping of names to values")
        return {}
    return {str(k): matrix_text(v) for k, v in outputs.items()}


def runs_on_labels(
    value: Any, ctx: Mapping[str, Any], at: tuple[int, int], problems: Problems
) -> list[str]:
    if isinstance(value, Mapping):
        value = value.get("labels", value.get("group", ""))
    items = value if isinstance(value, list) else [value]
    labels: list[str] = []
    for item in items:
        text = matrix_text(item)
        try:
            whole = EXPRESSION.fullmatch(text.strip()) if text.count("${{") == 1 else None
            if whole is not None:
                # One expression may give several labels: `runs-on: ${{ matrix.runner }}`.
                value = evaluate_static(whole[1], ctx, where(item, at))
                values = value if isinstance(value, list) else [value]
                labels += [matrix_text(v) for v in values]
            else:
                labels.append(fill_static(text, ctx, where(item, at), keep_runtime=False))
        except Exception as exc:
            problems.add(where(item, at), str(exc))
    return labels


# Job keys accepted with a note in the plan: they change nothing here.
_NO_EFFECT = {
    "permissions": "accepted and ignored (SauCI gives a job no GitHub token)",
    "environment": "accepted, no effect (SauCI has no deployment environments or their "
    "protection rules; the job's secrets come from the server's secrets)",
}


def no_effect_notes(job: Mapping[str, Any]) -> list[str]:
    """The plan's notes for the job's keys that change nothing under SauCI."""
    return [f"{key}: {why}" for key, why in _NO_EFFECT.items() if key in job]


def strategy_problems(strategy: Mapping[str, Any], problems: Problems) -> None:
    """An unknown ``strategy`` key (``fail_fast``) is a problem, not a silent default."""
    for key in strategy:
        if key not in ("matrix", "fail-fast", "max-parallel"):
            problems.add(
                where(key), f"unknown strategy key {key!r} (matrix, fail-fast, max-parallel)"
            )


def worker_labels(labels: list[str], at: tuple[int, int], problems: Problems) -> tuple[str, ...]:
    """The worker labels ``runs-on`` asks for (``[self-hosted, linux, gpu]``: ``gpu``),
    checked as ``.sauci.yml``'s ``runs_on`` is (they name broker queues)."""
    from sauci.core.labels import label_problem

    wanted = sorted({label.lower() for label in labels if not _ANY_LINUX.fullmatch(label)})
    for label in wanted:
        if (problem := label_problem(label)) is not None:
            problems.add(at, f"runs-on: {problem}")
    return tuple(wanted)


def job_defaults(doc: LMap, job: LMap, problems: Problems) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for level in (doc, job):
        defaults = level.get("defaults")
        if defaults is not None and not (
            isinstance(defaults, LMap) and isinstance(defaults.get("run", LMap()), LMap)
        ):
            problems.add(level.at("defaults"), "'defaults' must be a mapping with a 'run' mapping")
            continue
        if isinstance(defaults, Mapping) and isinstance(defaults.get("run"), Mapping):
            run = defaults["run"]
            for key in ("shell", "working-directory"):
                if key in run:
                    out[key] = run[key]
            if "shell" in run:
                shell_template(run["shell"], problems, run.at("shell"))
    return out


def workflow_concurrency(
    doc: LMap, ctx: Mapping[str, Any], problems: Problems
) -> tuple[str, bool] | None:
    """The workflow's ``concurrency`` as (group, cancel-in-progress), expressions evaluated
    with the contexts GitHub allows there (``github``, ``inputs``, ``vars``)."""
    value, at = doc["concurrency"], doc.at("concurrency")
    cancel: Any = False
    if isinstance(value, LMap):
        if "group" not in value:
            problems.add(at, "concurrency needs a 'group'")
            return None
        for key in value:
            if key not in ("group", "cancel-in-progress"):
                problems.add(where(key), f"unknown concurrency key {key!r}")
        cancel = value.get("cancel-in-progress", False)
        value, at = value["group"], value.at("group")
    if not isinstance(value, (str, int, float)) or isinstance(value, bool) or not str(value):
        problems.add(at, "a concurrency group must be a non-empty string")
        return None
    try:
        group = fill_static(str(value), ctx, at, keep_runtime=False)
        if isinstance(cancel, str):
            cancel = evaluate_static(condition_source(cancel), ctx, at)
    except Exception as exc:  # the expression language's errors, located
        problems.add(at, str(exc))
        return None
    from sauci.core.expr import truthy

    return group, bool(truthy(cancel))
