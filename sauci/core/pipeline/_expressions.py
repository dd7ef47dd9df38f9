"""Checking the ``${{ ... }}`` of one pipeline text, each problem at its own line and column."""

from __future__ import annotations

from collections.abc import Collection, Mapping

from yaml.nodes import Node

from sauci.core.expressions import problems
from sauci.core.pipeline._nodes import Checker

__all__ = ["check_text", "locate"]


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
    nth = text.count("${{", 0, offset)
    position = -1
    for _ in range(nth + 1):
        position = raw.find("${{", position + 1)
        if position < 0:
            return node
    if raw.count("${{") != text.count("${{"):
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
    found = problems(text, contexts, functions)
    for offset, message in found:
        chk.add(locate(chk, node, text, offset), f"{what} {message}")
    return not found
