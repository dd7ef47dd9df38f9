"""The syntax tree of an expression: frozen nodes, each with its offset in the source."""

from __future__ import annotations

from typing import Any

import attrs

__all__ = ["Access", "Call", "Compare", "Context", "Literal", "Logical", "Node", "Not", "Star"]


@attrs.frozen
class Literal:
    value: Any
    offset: int
    depth: int = 1


@attrs.frozen
class Context:
    """A top-level name: ``github``, ``matrix``, ``steps``..."""

    name: str
    offset: int
    depth: int = 1


@attrs.frozen
class Star:
    """The ``*`` of ``.*`` or ``[*]``: every element (an object filter)."""

    offset: int
    depth: int = 1


@attrs.frozen
class Access:
    """``target.name``, ``target[index]`` or ``target.*``."""

    target: Node
    index: Node  # a Literal for .name, a Star for .* and [*]
    offset: int
    depth: int


@attrs.frozen
class Not:
    operand: Node
    offset: int
    depth: int


@attrs.frozen
class Compare:
    """``==``, ``!=``, ``<``, ``<=``, ``>``, ``>=``."""

    operator: str
    left: Node
    right: Node
    offset: int  # of the operator
    depth: int


@attrs.frozen
class Logical:
    """``a && b && c`` or ``a || b || c``: operands kept flat, evaluated left to right."""

    operator: str
    operands: tuple[Node, ...]
    offset: int
    depth: int


@attrs.frozen
class Call:
    name: str  # lower-cased
    spelled: str  # as written
    arguments: tuple[Node, ...]
    offset: int
    depth: int


Node = Literal | Context | Star | Access | Not | Compare | Logical | Call
