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
RUNTIME = re.compile(
    r"\b(steps|job|needs|secrets|success|failure|always|cancelled|hashFiles)\b"
    # Where the job runs (a matrix entry's own copy of the workspace, its own temp
    # folder) and the build's id (`sauci run` has none when it plans).
    r"|\bgithub\s*\.\s*(workspace|run_id|run_number)\b|\brunner\s*\.\s*(temp|tool_cache)\b",
    re.IGNORECASE,
)
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
    """``text`` with each ``${{ }}`` that can be known now replaced by its value as text.

    The expressions are found by the expression language's own scanner, so a
    ``}}`` inside a string (``format('{{{0}}}', x)``) does not end one.
    """
    if "${{" not in text:
        return text
    from sauci.core.expr import parse_template

    env = contexts.get("env")
    out = []
    for part in parse_template(text, line=at[0], col=at[1]):
        if isinstance(part, str):
            out.append(part)
        elif keep_runtime and is_runtime(part.text, env):
            out.append("${{" + part.text + "}}")
        else:
            out.append(matrix_text(part.evaluate(contexts)))
    return "".join(out)


def condition_source(value: Any) -> str:
    """An ``if:`` as expression source: ``${{ }}`` around the whole of it is optional."""
    text = str(value).strip() if not isinstance(value, bool) else ("true" if value else "false")
    whole = EXPRESSION.fullmatch(text)
    if whole is not None:
        return whole[1].strip()
    return text
