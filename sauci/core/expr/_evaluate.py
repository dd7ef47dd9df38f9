"""Evaluating a syntax tree against contexts: property access, filters, operators, calls."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from sauci.core.expr._errors import MAX_WORK, ExpressionError
from sauci.core.expr._functions import BUILTINS, CALLER_SUPPLIED, FunctionFailed
from sauci.core.expr._json import to_string
from sauci.core.expr._lexer import Source
from sauci.core.expr._nodes import Access, Call, Compare, Context, Literal, Logical, Node, Not, Star
from sauci.core.expr._values import (
    ARRAY,
    OBJECT,
    equals,
    greater,
    kind,
    less,
    primitive,
    to_number,
    truthy,
)

__all__ = ["Budget", "Filtered", "evaluate_tree", "lookup"]


class Budget:
    """The work one evaluation may still do, in units (a node, an element, 64 characters)."""

    __slots__ = ("left", "total")

    def __init__(self, units: int = MAX_WORK) -> None:
        self.left = self.total = units

    def spend(self, units: int) -> None:
        self.left -= units
        if self.left < 0:
            raise _Exhausted


class _Exhausted(Exception):
    pass


def _size(value: Any) -> int:
    """What handling ``value`` costs: its length for arrays, objects and strings (per 64)."""
    if isinstance(value, str):
        return 1 + len(value) // 64
    if isinstance(value, Mapping | list | tuple):
        return 1 + len(value)
    return 1


class Filtered(list[Any]):
    """The array an object filter (``.*``) makes; further access maps over its items."""


def lookup(mapping: Mapping[str, Any], key: str) -> tuple[bool, Any]:
    """``mapping[key]`` ignoring case (an exact match first): (found, value)."""
    if key in mapping:
        return True, mapping[key]
    folded = key.lower()
    for name, value in mapping.items():
        text = name if isinstance(name, str) else to_string(name)  # YAML keys may be numbers
        if text.lower() == folded:
            return True, value
    return False, None


def _index(item: Any, key: Any) -> tuple[bool, Any]:
    k = kind(item)
    if k == OBJECT:
        if not primitive(key):
            return False, None
        return lookup(item, to_string(key))
    if k == ARRAY:
        number = to_number(key)
        if math.isfinite(number) and number >= 0 and int(number) < len(item):
            return True, item[int(number)]
    return False, None


def _access(target: Any, key: Any, star: bool) -> Any:
    if isinstance(target, Filtered):
        result = Filtered()
        for item in target:
            if star:
                if kind(item) == OBJECT:
                    result.extend(item.values())
                elif kind(item) == ARRAY:
                    result.extend(item)
            else:
                found, value = _index(item, key)
                if found:
                    result.append(value)
        return result
    if star:
        if kind(target) == OBJECT:
            return Filtered(target.values())
        if kind(target) == ARRAY:
            return Filtered(target)
        return Filtered()
    return _index(target, key)[1]


class _Evaluator:
    def __init__(
        self,
        source: Source,
        contexts: Mapping[str, Any],
        functions: Mapping[str, Callable[..., Any]] | None,
        budget: Budget,
    ) -> None:
        self.budget = budget
        self.at = 0  # the node being worked on, for the error when the budget runs out
        self.source = source
        self.contexts = contexts
        self.functions = {name.lower(): f for name, f in (functions or {}).items()}

    def error(self, message: str, offset: int) -> ExpressionError:
        return self.source.error(message, offset)

    def run(self, node: Node) -> Any:
        self.budget.spend(1)
        if isinstance(node, Literal):
            return node.value
        if isinstance(node, Context):
            found, value = lookup(self.contexts, node.name)
            if not found:
                known = ", ".join(sorted(map(str, self.contexts))) or "none"
                raise self.error(
                    f"unknown context {node.name!r} (the contexts here are: {known})", node.offset
                )
            return value
        if isinstance(node, Access):
            star = isinstance(node.index, Star)
            key = None if star else self.run(node.index)
            target = self.run(node.target)
            self.at = node.offset
            if isinstance(target, Mapping) and primitive(key) and to_string(key) not in target:
                self.budget.spend(len(target))  # the search that ignores case
            result = _access(target, key, star=star)
            if isinstance(result, Filtered):
                self.budget.spend(
                    len(result) + sum(len(i) for i in result if isinstance(i, Mapping))
                )
            return result
        if isinstance(node, Not):
            return not truthy(self.run(node.operand))
        if isinstance(node, Logical):
            want = node.operator == "||"
            value = None
            for operand in node.operands:
                value = self.run(operand)
                if truthy(value) == want:
                    break
            return value
        if isinstance(node, Compare):
            return self.compare(node.operator, self.run(node.left), self.run(node.right))
        if isinstance(node, Call):
            return self.call(node)
        raise self.error("a '*' is only allowed after '.' or in '[*]'", node.offset)

    @staticmethod
    def compare(operator: str, left: Any, right: Any) -> bool:
        if operator == "==":
            return equals(left, right)
        if operator == "!=":
            return not equals(left, right)
        if operator == "<":
            return less(left, right)
        if operator == ">":
            return greater(left, right)
        if operator == "<=":
            return equals(left, right) or less(left, right)
        return equals(left, right) or greater(left, right)

    def call(self, node: Call) -> Any:
        arguments = [self.run(argument) for argument in node.arguments]
        self.at = node.offset
        self.budget.spend(sum(map(_size, arguments)))
        if node.name in BUILTINS:
            try:
                result = BUILTINS[node.name][3](*arguments)
            except FunctionFailed as exc:
                raise self.error(str(exc), node.offset) from None
            self.budget.spend(_size(result))
            return result
        supplied = self.functions.get(node.name)
        if supplied is None:
            spelled = CALLER_SUPPLIED.get(node.name, (node.spelled,))[0]
            raise self.error(f"{spelled}() is not available here", node.offset)
        try:
            return supplied(*arguments)
        except ExpressionError as exc:
            if exc.line:
                raise
            raise self.error(exc.message, node.offset) from None


def evaluate_tree(
    tree: Node,
    source: Source,
    contexts: Mapping[str, Any],
    functions: Mapping[str, Callable[..., Any]] | None = None,
    budget: Budget | None = None,
) -> Any:
    """The value of ``tree``; ``budget`` (shared by the expressions of one text) bounds the work."""
    evaluator = _Evaluator(source, contexts, functions, budget or Budget())
    try:
        value = evaluator.run(tree)
    except _Exhausted:
        raise evaluator.error(
            f"the expression does more than {evaluator.budget.total} units of work (elements visited, "
            "64-character blocks of text handled); simplify it",
            evaluator.at,
        ) from None
    return list(value) if isinstance(value, Filtered) else value
