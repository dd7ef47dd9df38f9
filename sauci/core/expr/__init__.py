"""GitHub Actions expressions: ``${{ github.ref == 'refs/heads/main' && matrix.os }}``.

Pure: no I/O, nothing imported from adapters. An expression is parsed once
(:func:`parse`) into a tree with positions and evaluated against contexts the
caller hands in (``github``, ``env``, ``matrix``, ``steps``...) and functions
it supplies (``hashFiles`` and the status functions); the built-in functions
(``contains``, ``startsWith``, ``endsWith``, ``format``, ``join``,
``toJSON``, ``fromJSON``, ``case``) are here. The semantics are GitHub's
documented ones (docs/workflows.md, "Expressions"); every error is an
:class:`ExpressionError` at the line and column of the offending character.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sauci.core.expr._errors import (
    MAX_DEPTH,
    MAX_JSON_CHARS,
    MAX_LENGTH,
    MAX_TREE_DEPTH,
    MAX_VALUE_CHARS,
    MAX_WORK,
    ExpressionError,
)
from sauci.core.expr._expression import Expression, Reference, parse, parse_condition
from sauci.core.expr._functions import STATUS_FUNCTIONS
from sauci.core.expr._json import to_string
from sauci.core.expr._template import interpolate, parse_template
from sauci.core.expr._values import format_number, truthy

__all__ = [
    "MAX_DEPTH",
    "MAX_JSON_CHARS",
    "MAX_LENGTH",
    "MAX_TREE_DEPTH",
    "MAX_VALUE_CHARS",
    "MAX_WORK",
    "STATUS_FUNCTIONS",
    "Expression",
    "ExpressionError",
    "Reference",
    "evaluate",
    "format_number",
    "interpolate",
    "parse",
    "parse_condition",
    "parse_template",
    "to_string",
    "truthy",
]


def evaluate(
    source: str,
    contexts: Mapping[str, Any],
    functions: Mapping[str, Callable[..., Any]] | None = None,
    *,
    line: int = 1,
    col: int = 1,
) -> Any:
    """Parse ``source`` and evaluate it: ``parse(source, line=line, col=col).evaluate(...)``."""
    return parse(source, line=line, col=col).evaluate(contexts, functions)
