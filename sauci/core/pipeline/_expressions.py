"""The pipeline reader's side of ``${{ ... }}``: the problems of one text, each
at its own line and column, and the text filled in.

A text without ``${{`` holds no expression: it is neither checked nor filled
in, so a pipeline without expressions does not import their reader
(:mod:`sauci.core.expressions`).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING

from yaml.nodes import Node

from sauci.core.pipeline._nodes import Checker

if TYPE_CHECKING:
    from sauci.core.expressions import Expression

__all__ = ["OPEN", "check_text", "expand_text", "expressions_of", "locate"]

OPEN = "${{"  # what every expression starts with


def locate(chk: Checker, node: Node, text: str, offset: int) -> Node | tuple[int, int]:
    """Where the expression at ``offset`` of ``text`` (the value of ``node``) is in the file.

    The n-th ``${{`` of the value is the n-th of the scalar as written (block
    and quoted styles change indentation and escapes, not ``${{``); when the
    two disagree (an escaped ``\\x24{{``), the scalar's own start.
    """
    source = chk.source
    if source is None:
        return node
    start, end = node.start_mark.index, node.end_mark.index
    raw = source[start:end]
    nth = text.count(OPEN, 0, offset)
    position = -1
    for _ in range(nth + 1):
        position = raw.find(OPEN, position + 1)
        if position < 0:
            return node
    if raw.count(OPEN) != text.count(OPEN):
        return node
    at = start + position
    line = source.count("\n", 0, at) + 1
    column = at - (source.rfind("\n", 0, at) + 1) + 1
    return (line, column)


def check_text(
    chk: Checker,
    text: str,
    node: Node,
    what: str,
    contexts: Mapping[str, Collection[str]],
    functions: Collection[str] = (),
) -> bool:
    """Add a problem for each expression of ``text`` that cannot be expanded; True if none.

    ``what`` starts each message ("'junit' in step 'test'"); ``functions``
    names the functions allowed here (``hashFiles`` in a cache key).
    """
    if OPEN not in text:
        return True
    from sauci.core.expressions import problems

    found = problems(text, contexts, functions)
    for offset, message in found:
        chk.add(locate(chk, node, text, offset), f"{what} {message}")
    return not found


def expressions_of(text: str) -> list[Expression]:
    """The expressions of ``text`` in order (:func:`sauci.core.expressions.find_expressions`)."""
    if OPEN not in text:
        return []
    from sauci.core.expressions import find_expressions

    return find_expressions(text)


def expand_text(text: str, context: Mapping[str, Mapping[str, str]]) -> str:
    """``text`` with its expressions filled in from ``context``, checked already
    (:func:`sauci.core.expressions.expand`)."""
    if OPEN not in text:
        return text
    from sauci.core.expressions import expand

    return expand(text, context)
