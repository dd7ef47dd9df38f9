"""How a job's matrix entries run beyond the written matrix: ``max-parallel``, and a
matrix known only while the build runs (``fromJSON`` of another job's outputs).

``matrix: ${{ fromJSON(needs.setup.outputs.matrix) }}``, one axis
(``python: ${{ fromJSON(needs.setup.outputs.versions) }}``) or
``include: ${{ fromJSON(...) }}``. The plan holds one placeholder step for
the job, whose :class:`~sauci.core.step_parts.Expansion` builds the entries
when the jobs it needs have ended (sauci.core.expansion): the outputs
they left in the workspace read back, the matrix evaluated and expanded
by the same rules as a written one (``_matrix.expand_matrix``, at most
256 entries), each entry made into its step as the plan makes a written
matrix's. Every error is a message naming the job and the output.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from sauci.core.conditions import OUTPUTS_MAX, read_outputs
from sauci.core.models import Step
from sauci.core.step_parts import Expansion
from sauci.workflows.github._context import EXPRESSION, condition_source
from sauci.workflows.github._matrix import MAX_ENTRIES, expand_matrix
from sauci.workflows.github._matrix_outputs import driver_safe_name
from sauci.workflows.github._matrix_static import static_matrix
from sauci.workflows.github._reading import Problems
from sauci.workflows.github._settings import Entry

__all__ = [
    "dynamic_expansion",
    "dynamic_source",
    "max_parallel",
    "needs_problems",
    "placeholder",
    "placeholders",
    "written_steps",
]

_NEEDS = re.compile(r"\bneeds\b")
_OUTPUT = re.compile(r"\bneeds\.([A-Za-z_][\w-]*)\.outputs\.([A-Za-z_][\w-]*)")


def max_parallel(
    strategy: Any, job_id: str, problems: Problems, notes: list[str]
) -> tuple[str, int] | None:
    """``strategy.max-parallel`` as ``Step.max_parallel`` (the job's entries are the
    group), with its note; an expression is only noted (SauCI's step slots decide)."""
    value = strategy.get("max-parallel") if isinstance(strategy, Mapping) else None
    if value is None:
        return None
    if isinstance(value, str) and "${{" in value:
        notes.append("max-parallel as an expression: SauCI's step slots decide")
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        problems.add(strategy.at("max-parallel"), "max-parallel must be a whole number above 0")
        return None
    notes.append(f"max-parallel: at most {value} entries run at once")
    return job_id, value


def placeholder(
    out: list[tuple[Entry, Step | None]],
    job_id: str,
    job: Any,
    at: tuple[str, int, int],
    ctx: Mapping[str, Any],
    needs: Sequence[str],
    names_of: Mapping[str, list[str]],
    again: Callable[..., list[tuple[Entry, Step | None]]],
) -> list[tuple[Entry, Step | None]]:
    """The job's entry ``out`` (made with no matrix) as the placeholder step whose
    Expansion makes its entries with ``again(combos, names_of, problems)`` (job_entries
    with these combinations); ``at``: the matrix's file, line and column; ``needs``:
    the jobs it needs, whose outputs it reads."""
    matrix = job["strategy"]["matrix"]
    known = {k: list(v) for k, v in names_of.items()}  # as the plan knew them

    def entry_steps(combos: list[dict[str, Any]], problems: Problems) -> list[Step]:
        return [s for _e, s in again(combos, dict(known), problems) if s is not None]

    expansion = dynamic_expansion(job_id, matrix, at[1:], at[0], ctx, needs, entry_steps)
    return placeholders(out, dynamic_source(matrix) or "the jobs it needs", expansion, job)


def placeholders(
    out: list[tuple[Entry, Step | None]], dynamic: str, expansion: Expansion, job: Any
) -> list[tuple[Entry, Step | None]]:
    """The job's entry made (with no matrix) into the placeholder of ``expansion``:
    the plan shows where its entries come from and its steps as written."""
    return [
        (
            attrs.evolve(
                e, dynamic=f"entries from {dynamic} at run time", steps=written_steps(job)
            ),
            attrs.evolve(s, expansion=expansion, fail_fast_group=None, max_parallel=None)
            if s is not None and e.skip is None
            else s,
        )
        for e, s in out
    ]


def _expressions(matrix: Any) -> list[str]:
    """The expression sources written in ``matrix`` (whole, an axis, include, exclude)."""
    values = [matrix] if isinstance(matrix, str) else list(matrix.values())
    return [m[1] for v in values if isinstance(v, str) for m in EXPRESSION.finditer(v)]


def dynamic_source(matrix: Any) -> str | None:
    """What a matrix that reads ``needs`` is built from ("needs.setup.outputs.matrix");
    None for a matrix the plan can expand."""
    if not isinstance(matrix, (str, Mapping)):
        return None
    reading = [s for s in _expressions(matrix) if _NEEDS.search(s)]
    if not reading:
        return None
    outputs = sorted({f"needs.{m[1]}.outputs.{m[2]}" for s in reading for m in _OUTPUT.finditer(s)})
    return ", ".join(outputs) or "the jobs it needs"


def needs_problems(matrix: Any, needs: Sequence[str], jobs: Any) -> list[str]:
    """Why the matrix cannot read the outputs it names (a job it does not need,
    a matrix job's outputs)."""
    problems = []
    for source in _expressions(matrix):
        for m in _OUTPUT.finditer(source):
            job = m[1]
            other = jobs.get(job) if isinstance(jobs, Mapping) else None
            if job not in needs:
                problems.append(f"the matrix reads needs.{job}, but the job does not need {job!r}")
            elif _is_matrix_job(other):
                problems.append(
                    f"a matrix built from the outputs of the matrix job {job!r} is not supported"
                )
    return sorted(set(problems))


def written_steps(job: Mapping[str, Any]) -> tuple[str, ...]:
    """The names of the job's steps as written (the plan shows them for a job whose
    entries are known only at run time: its ``matrix.*`` have no value yet)."""
    names = []
    for step in job.get("steps") or ():
        if not isinstance(step, Mapping):
            continue
        title = step.get("name") or step.get("run") or step.get("uses") or ""
        lines = str(title).strip().splitlines()
        first = lines[0].strip() if lines else ""
        names.append(first if "name" in step else f"Run {first}")
    return tuple(names)


def _is_matrix_job(job: Any) -> bool:
    strategy = job.get("strategy") if isinstance(job, Mapping) else None
    return isinstance(strategy, Mapping) and strategy.get("matrix") is not None


def dynamic_expansion(
    job_id: str,
    matrix: Any,
    at: tuple[int, int],
    file: str,
    ctx: Mapping[str, Any],
    needs: Sequence[str],
    make_steps: Callable[[list[dict[str, Any]], Problems], list[Step]],
) -> Expansion:
    """The Expansion of the job ``job_id``, whose ``matrix`` (at ``at``) reads ``needs``;
    ``make_steps`` makes the steps of the entries (their problems in the Problems given)."""
    source = dynamic_source(matrix) or "the jobs it needs"
    describe = f"job {job_id!r}: matrix from {source}"

    def expand(workspace: Path) -> list[Step]:
        contexts = dict(ctx)
        contexts["needs"] = {}
        for need in needs:
            relative = f".sauci-gha/outputs/{driver_safe_name(need)}.json"
            try:
                size = os.lstat(workspace / relative).st_size
            except OSError:
                size = 0
            if size > OUTPUTS_MAX:
                raise ValueError(
                    f"the outputs of the job {need!r} are {size} bytes, more than {OUTPUTS_MAX}"
                )
            outputs = read_outputs(workspace, relative)
            contexts["needs"][need] = {"result": "success", "outputs": outputs}
        for source in _expressions(matrix):
            for m in _OUTPUT.finditer(source):
                if not contexts["needs"].get(m[1], {}).get("outputs", {}).get(m[2]):
                    raise ValueError(
                        f"needs.{m[1]}.outputs.{m[2]} is empty: the job {m[1]!r} did not set it"
                    )
        try:
            value = static_matrix(_whole(matrix), contexts, at, runtime=True)
            combos = expand_matrix(value)
        except Exception as exc:  # MatrixError, the expression language's errors
            problem = getattr(exc, "problem", None)
            if callable(problem):  # an ExpressionError: at its own position
                p = problem(file)
                raise ValueError(f"{p.file}:{p.line}:{p.column}: {p.message}") from None
            raise ValueError(f"{file}:{at[0]}:{at[1]}: {_said(exc)}") from None
        if len(combos) > MAX_ENTRIES:  # expand_matrix's own limit, said again for certain
            raise ValueError(f"{len(combos)} entries, more than {MAX_ENTRIES}")
        problems = Problems(file)
        steps = make_steps(combos, problems)
        if problems:
            first = problems.items[0]
            raise ValueError(f"{first.file}:{first.line}:{first.column}: {first.message}")
        return steps

    return Expansion(describe=describe, expand=expand, limit=MAX_ENTRIES)


def _whole(matrix: Any) -> Any:
    """A matrix written as one ``${{ }}`` as its expression (static_matrix evaluates it)."""
    if isinstance(matrix, str):
        return "${{ " + condition_source(matrix) + " }}"
    return matrix


def _said(exc: Exception) -> str:
    text = str(exc)
    return text if text else type(exc).__name__
