"""An expression parsed once, evaluated many times."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import attrs

from sauci.core.expr._evaluate import evaluate_tree
from sauci.core.expr._functions import STATUS_FUNCTIONS
from sauci.core.expr._lexer import Source, closing
from sauci.core.expr._nodes import Access, Call, Compare, Context, Literal, Logical, Node, Not
from sauci.core.expr._parser import parse_tree

__all__ = ["Expression", "Reference", "parse", "parse_condition"]


@attrs.frozen
class Reference:
    """A context and the property names that follow it, as written (``steps``,
    ``build``, ``outputs``, ``version``): the path stops at the first index that
    is not a literal name. ``line``/``col`` are where the context's name is."""

    path: tuple[str, ...]
    line: int
    col: int


def _children(node: Node) -> tuple[Node, ...]:
    if isinstance(node, Access):
        return (node.target, node.index)
    if isinstance(node, Not):
        return (node.operand,)
    if isinstance(node, Compare):
        return (node.left, node.right)
    if isinstance(node, Logical | Call):
        return node.operands if isinstance(node, Logical) else node.arguments
    return ()


def _walk(tree: Node) -> Iterator[Node]:
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(reversed(_children(node)))


@attrs.frozen
class Expression:
    """A parsed expression: evaluate it with :meth:`evaluate`; ``names``,
    ``contexts``, ``functions`` and ``references`` say what it uses (names
    lower-cased, as expressions ignore case)."""

    source: Source
    tree: Node = attrs.field(repr=False)

    @property
    def text(self) -> str:
        return self.source.text

    @property
    def contexts(self) -> frozenset[str]:
        return frozenset(n.name for n in _walk(self.tree) if isinstance(n, Context))

    @property
    def functions(self) -> frozenset[str]:
        return frozenset(n.name for n in _walk(self.tree) if isinstance(n, Call))

    @property
    def names(self) -> frozenset[str]:
        """Every context and function the expression names."""
        return self.contexts | self.functions

    @property
    def references(self) -> tuple[Reference, ...]:
        """Each context reference with the literal property path after it, in source order."""
        found: list[Reference] = []
        nodes = list(_walk(self.tree))
        targets = {id(n.target) for n in nodes if isinstance(n, Access)}
        for node in nodes:
            if id(node) in targets or not isinstance(node, Access | Context):
                continue  # an outer access reports the whole chain
            path: list[str] = []
            current: Node = node
            while isinstance(current, Access):
                index = current.index
                path = (
                    [index.value, *path]
                    if isinstance(index, Literal) and isinstance(index.value, str)
                    else []
                )
                current = current.target
            if isinstance(current, Context):
                line, col = self.source.position(current.offset)
                found.append(Reference((current.name, *path), line, col))
        return tuple(sorted(found, key=lambda r: (r.line, r.col)))

    def evaluate(
        self,
        contexts: Mapping[str, Any],
        functions: Mapping[str, Callable[..., Any]] | None = None,
    ) -> Any:
        """The expression's value with these contexts (``{'github': {...}, 'matrix': {...}}``)
        and caller-supplied functions (``hashFiles``, ``success``...)."""
        return evaluate_tree(self.tree, self.source, contexts, functions)


def parse(source: str, *, line: int = 1, col: int = 1) -> Expression:
    """``source`` (what is inside ``${{ }}``, or the whole ``${{ ... }}``) parsed;
    ``line``/``col`` say where its first character is in the file, for errors."""
    where = Source(source, line, col)
    stripped = source.strip()
    if stripped.startswith("${{"):
        start = source.index("${{") + 3
        end = closing(source, start)
        if end < 0:
            raise where.error("'${{' is not closed by '}}'", start - 3)
        if source[end + 2 :].strip():
            raise where.error(
                "text after '}}': write the whole condition inside one ${{ }}", end + 2
            )
        inner_line, inner_col = where.position(start)
        where = Source(source[start:end], inner_line, inner_col)
    return Expression(where, parse_tree(where))


def parse_condition(source: str, *, line: int = 1, col: int = 1) -> Expression:
    """An ``if:`` condition, with or without ``${{ }}``: when it calls none of
    the status functions, GitHub's implicit ``success() && (...)`` is added to
    the tree (positions stay those of the text as written)."""
    expression = parse(source, line=line, col=col)
    if expression.functions & STATUS_FUNCTIONS:
        return expression
    implicit = Call("success", "success", (), 0, 1)
    tree = Logical("&&", (implicit, expression.tree), 0, expression.tree.depth + 1)
    return Expression(expression.source, tree)
