"""``${{ ... }}`` inside text: every one found, parsed with its file position, replaced."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sauci.core.expr._errors import MAX_VALUE_CHARS, MAX_WORK
from sauci.core.expr._evaluate import Budget, evaluate_tree
from sauci.core.expr._expression import Expression, parse
from sauci.core.expr._json import to_string
from sauci.core.expr._lexer import Source, closing

__all__ = ["interpolate", "parse_template"]

_OPEN = "${{"


def parse_template(text: str, *, line: int = 1, col: int = 1) -> list[str | Expression]:
    """``text`` split into literal pieces and parsed expressions, in order."""
    where = Source(text, line, col)
    parts: list[str | Expression] = []
    i = 0
    counted, line_now, line_start = 0, line, -1  # positions found in one pass, not per expression

    def position(offset: int) -> tuple[int, int]:
        nonlocal counted, line_now, line_start
        newlines = text.count("\n", counted, offset)
        if newlines:
            line_now += newlines
            line_start = text.rindex("\n", counted, offset)
        counted = offset
        return line_now, (col + offset if line_start < 0 else offset - line_start)

    while (start := text.find(_OPEN, i)) >= 0:
        inner = start + len(_OPEN)
        end = closing(text, inner)
        if end < 0:
            raise where.error("'${{' is not closed by '}}'", start)
        if start > i:
            parts.append(text[i:start])
        inner_line, inner_col = position(inner)
        parts.append(parse(text[inner:end], line=inner_line, col=inner_col))
        i = end + 2
    if i < len(text):
        parts.append(text[i:])
    return parts


def interpolate(
    text: str,
    contexts: Mapping[str, Any],
    functions: Mapping[str, Callable[..., Any]] | None = None,
    *,
    line: int = 1,
    col: int = 1,
) -> str:
    """``text`` with every ``${{ ... }}`` replaced by its value as a string (null
    is '', numbers as GitHub prints them, arrays and objects as JSON). A value
    is put in as it is, never expanded again."""
    if _OPEN not in text:
        return text
    out: list[str] = []
    added = 0
    budget = Budget(2 * MAX_WORK)  # one budget for all the text's expressions
    for part in parse_template(text, line=line, col=col):
        if isinstance(part, str):
            out.append(part)
            continue
        value = to_string(evaluate_tree(part.tree, part.source, contexts, functions, budget))
        added += len(value)
        if added > 8 * MAX_VALUE_CHARS:
            raise part.source.error(
                f"the expressions of this text add more than {8 * MAX_VALUE_CHARS} characters", 0
            )
        out.append(value)
    return "".join(out)
