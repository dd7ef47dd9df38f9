"""A job's ``strategy.matrix`` with the expressions known before the build evaluated."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sauci.workflows.github._context import condition_source, evaluate_static, is_runtime
from sauci.workflows.github._matrix import MatrixError, matrix_text
from sauci.workflows.github._reading import LMap

__all__ = ["static_matrix"]


def static_matrix(
    matrix: Any, ctx: Mapping[str, Any], at: tuple[int, int], *, runtime: bool = False
) -> dict[str, Any]:
    """Axes written as ``${{ fromJSON(...) }}`` evaluated; the rest as written. A whole
    matrix written as one expression is evaluated too, unless only a running job knows
    it (``runtime``: the job runs, its ``needs`` are in ``ctx``: _matrix_dynamic)."""
    if isinstance(matrix, str):
        source = condition_source(matrix)
        if is_runtime(source) and not runtime:
            raise MatrixError(
                "a matrix computed by an expression (from another job's outputs) is not supported yet"
            )
        value = _plain(evaluate_static(source, ctx, at))
        if not isinstance(value, dict):
            shown = matrix_text(value)
            shown = shown if len(shown) <= 80 else shown[:80] + "..."
            raise MatrixError(f"the matrix expression gives {shown!r}, not an object")
        matrix = value
    out: dict[str, Any] = {}
    for key, value in matrix.items():
        if isinstance(value, str) and "${{" in value:
            source = condition_source(value)
            out[key] = evaluate_static(
                source, ctx, matrix.at(key) if isinstance(matrix, LMap) else at
            )
        else:
            out[key] = _plain(value)
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, str):
        return str(value)
    return value
