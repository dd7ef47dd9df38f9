"""One job of a workflow: its matrix entries, each made into one SauCI step."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from sauci.core.models import Step
from sauci.workflows.github._job_entry import job_entry, job_env
from sauci.workflows.github._matrix import expand_matrix
from sauci.workflows.github._matrix_dynamic import (
    dynamic_expansion,
    dynamic_source,
    needs_problems,
    written_steps,
)
from sauci.workflows.github._matrix_static import static_matrix as _static_matrix
from sauci.workflows.github._reading import LList, LMap, Problems, where
from sauci.workflows.github._settings import Entry, Settings

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
) -> list[tuple[Entry, Step | None]]:
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
    combos: list[dict[str, Any]] = [{}]
    matrix = strategy.get("matrix") if isinstance(strategy, Mapping) else None
    base_ctx = {
        "github": github,
        "env": wf_env,
        "inputs": github["event"].get("inputs", {}),
        "vars": {},
        "secrets": {},
        "runner": _RUNNER,
    }
    dynamic = dynamic_source(matrix)  # a matrix from the outputs of the jobs it needs
    if dynamic is not None:
        for problem in needs_problems(matrix, job_needs(job), doc.get("jobs")):
            problems.add(strategy.at("matrix"), problem)
    elif matrix is not None:
        try:
            combos = expand_matrix(_static_matrix(matrix, base_ctx, strategy.at("matrix")))
        except Exception as exc:  # MatrixError, the expression language's errors
            problems.add(strategy.at("matrix"), str(exc))
        # On a problem the steps are still checked, once, for their own problems.
    job_notes = []
    max_parallel = _max_parallel(strategy, job_id, problems)
    if max_parallel is not None:
        job_notes.append(f"max-parallel: at most {max_parallel[1]} entries run at once")
    elif "max-parallel" in strategy and not problems:
        job_notes.append("max-parallel as an expression: SauCI's step slots decide")
    if "concurrency" in job:
        job_notes.append(
            "job concurrency: not enforced (SauCI applies the workflow's concurrency to whole builds)"
        )
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

    def made(
        combos: list[dict[str, Any]], names_of: dict[str, list[str]], problems: Problems
    ) -> list[tuple[Entry, Step | None]]:
        return _entries(
            combos,
            job_id,
            job,
            base_ctx,
            strategy,
            needs,
            names_of,
            fail_fast,
            max_parallel,
            settings,
            problems,
            doc,
            job_notes,
        )

    if dynamic is None:
        return made(combos, names_of, problems)
    # One placeholder step, checked as an entry of no matrix; its entries are
    # made when the jobs it needs have ended (_matrix_dynamic).
    known = {k: list(v) for k, v in names_of.items()}

    def entry_steps(combos: list[dict[str, Any]], problems: Problems) -> list[Step]:
        return [s for _e, s in made(combos, dict(known), problems) if s is not None]

    expansion = dynamic_expansion(
        job_id, matrix, strategy.at("matrix"), settings.file, base_ctx, needs, entry_steps
    )
    return [
        (
            attrs.evolve(
                e, dynamic=f"entries from {dynamic} at run time", steps=written_steps(job)
            ),
            attrs.evolve(s, expansion=expansion, fail_fast_group=None, max_parallel=None)
            if s is not None and e.skip is None
            else s,
        )
        for e, s in made([{}], names_of, problems)
    ]


def _entries(
    combos: list[dict[str, Any]],
    job_id: str,
    job: LMap,
    base_ctx: dict[str, Any],
    strategy: Any,
    needs: list[str],
    names_of: dict[str, list[str]],
    fail_fast: bool,
    max_parallel: tuple[str, int] | None,
    settings: Settings,
    problems: Problems,
    doc: LMap,
    job_notes: list[str],
) -> list[tuple[Entry, Step | None]]:
    """The entries of ``combos`` made into steps (``names_of[job_id]`` set to their names)."""
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
        entry = job_entry(
            job_id, job, combo, ctx, needs, names_of, taken, settings, problems, doc, job_notes
        )
        if entry is None:
            continue
        out.append(entry)
    # Jobs that need this one wait for its entries that run here; an entry
    # skipped because SauCI cannot run it (another OS, a missing Python)
    # does not hold them back, unless every entry is skipped.
    if fail_fast or max_parallel:
        group = job_id if fail_fast else None
        out = [
            (e, attrs.evolve(s, fail_fast_group=group, max_parallel=max_parallel) if s else s)
            for e, s in out
        ]
    running = [e.name for e, s in out if s is not None and e.skip is None]
    names_of[job_id] = running or [e.name for e, s in out if s is not None]
    return out


def _max_parallel(strategy: Any, job_id: str, problems: Problems) -> tuple[str, int] | None:
    value = strategy.get("max-parallel") if isinstance(strategy, Mapping) else None
    if value is None or (isinstance(value, str) and "${{" in value):
        return None  # an expression: noted, SauCI's step slots decide
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        problems.add(strategy.at("max-parallel"), "max-parallel must be a whole number above 0")
        return None
    return job_id, value


_RUNNER = {"os": "Linux", "arch": "X64", "name": "sauci", "temp": "", "tool_cache": ""}
