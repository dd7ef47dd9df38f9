"""Expressions a workflow file holds, filled in when the plan is made where they can be.

Values known before the build (``matrix``, ``strategy``, ``github``,
``runner``, ``inputs``, ``vars`` and the ``env`` written in the file) are put
in now; an expression that reads what only the running job knows (``steps``,
``job``, ``needs``, ``secrets``, the status functions, ``hashFiles``, ``env`` set through
``GITHUB_ENV``) is left as written for the job driver, which evaluates it with
the same expression language when the step is about to run.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from sauci.workflows.github._matrix import matrix_text

__all__ = [
    "EXPRESSION",
    "RUNTIME",
    "condition_source",
    "evaluate_static",
    "fill_static",
    "is_runtime",
]

EXPRESSION = re.compile(r"\$\{\{(.*?)\}\}", re.DOTALL)
# Names whose value only the running job knows.
RUNTIME = re.compile(r"\b(steps|job|needs|secrets|success|failure|always|cancelled|hashFiles)\b")
_ENV_NAME = re.compile(r"\benv\.([A-Za-z_][A-Za-z0-9_]*)|\benv\[\s*'([^']*)'\s*\]")


def is_runtime(source: str, static_env: Mapping[str, Any] | None = None) -> bool:
    """Whether ``source`` reads something known only while the job runs."""
    if RUNTIME.search(_strip_strings(source)):
        return True
    if static_env is not None:
        for m in _ENV_NAME.finditer(_strip_strings(source)):
            if (m[1] or m[2]) not in static_env:
                return True
    return False


def _strip_strings(source: str) -> str:
    return re.sub(r"'(?:[^']|'')*'", "''", source)


def evaluate_static(
    source: str,
    contexts: Mapping[str, Any],
    at: tuple[int, int],
    functions: Mapping[str, Callable[..., Any]] | None = None,
) -> Any:
    """The value of the expression ``source`` (raises the expression language's error)."""
    from sauci.core.expr import evaluate

    return evaluate(source, contexts, functions, line=at[0], col=at[1])


def fill_static(
    text: str, contexts: Mapping[str, Any], at: tuple[int, int], *, keep_runtime: bool = True
) -> str:
    """``text`` with each ``${{ }}`` that can be known now replaced by its value as text."""
    env = contexts.get("env")

    def replace(match: re.Match[str]) -> str:
        source = match[1]
        if keep_runtime and is_runtime(source, env):
            return match[0]
        line, col = _offset(text, match.start(1), at)
        return matrix_text(evaluate_static(source, contexts, (line, col)))

    return EXPRESSION.sub(replace, text)


def _offset(text: str, index: int, at: tuple[int, int]) -> tuple[int, int]:
    """The position of ``text[index]`` when ``text`` starts at ``at`` (block scalars shift)."""
    before = text[:index]
    lines = before.count("\n")
    if lines == 0:
        return at[0], at[1] + index
    return at[0] + lines, len(before) - before.rfind("\n")


def condition_source(value: Any) -> str:
    """An ``if:`` as expression source: ``${{ }}`` around the whole of it is optional."""
    text = str(value).strip() if not isinstance(value, bool) else ("true" if value else "false")
    whole = EXPRESSION.fullmatch(text)
    if whole is not None:
        return whole[1].strip()
    return text
