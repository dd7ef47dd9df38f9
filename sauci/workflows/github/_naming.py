"""A job entry's name as GitHub shows it, and an expression's value as a condition."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sauci.workflows.github._context import fill_static
from sauci.workflows.github._matrix import matrix_text
from sauci.workflows.github._reading import LMap, Problems

__all__ = ["entry_name", "truthy"]


def truthy(value: Any) -> bool:
    from sauci.core.expr import truthy

    return bool(truthy(value))


def entry_name(
    job_id: str, job: LMap, combo: dict[str, Any], ctx: Mapping[str, Any], problems: Problems
) -> str:
    """The job's ``name`` (expressions filled), else its id; the matrix values in
    parentheses after it unless the name reads ``matrix`` itself."""
    if "name" in job:
        text = str(job["name"])
        try:
            name = fill_static(text, ctx, job.at("name"), keep_runtime=False)
        except Exception as exc:
            problems.add(job.at("name"), str(exc))
            name = text
        if "matrix" in text or not combo:
            return name.strip() or job_id
        base = name.strip() or job_id
    else:
        base = job_id
    if not combo:
        return base
    values = ", ".join(matrix_text(v) for v in combo.values())
    return f"{base} ({values})"
