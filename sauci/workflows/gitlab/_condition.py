"""GitLab's ``rules:if`` / ``only:variables`` expressions, parsed and evaluated.

The grammar GitLab documents: ``$VAR`` (true when set and not empty),
``$VAR == "text"``, ``!=``, ``=~ /regex/flags``, ``!~``, ``null``, single or
double quoted strings, ``&&`` (binding tighter) and ``||``, parentheses. The
right side of ``=~`` may be a variable holding ``/regex/``. A regex matches
anywhere in the value (GitLab's RE2 partial match; Python's ``re`` here).
Variables are looked up, never run: nothing in an expression is code.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["ConditionError", "evaluate", "parse"]

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<var>\$\{?[A-Za-z_][A-Za-z0-9_]*\}?)
    | (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
    | (?P<regex>/(?:[^/\\]|\\.)*/[a-z]*)
    | (?P<op>==|!=|=~|!~|&&|\|\||\(|\))
    | (?P<null>null\b)
    )""",
    re.X,
)


class ConditionError(ValueError):
    """An expression GitLab would refuse; the message says where and why."""


def parse(text: str) -> Any:
    """The expression as a small tree; raises ConditionError."""
    tokens: list[tuple[str, str, int]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise ConditionError(f"unexpected {text[pos:].strip()[:20]!r} at character {pos + 1}")
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind), match.start(kind)))
        pos = match.end()
    parser = _Parser(tokens)
    tree = parser.disjunction()
    if parser.index != len(tokens):
        _, value, at = tokens[parser.index]
        raise ConditionError(f"unexpected {value!r} at character {at + 1}")
    return tree


class _Parser:
    def __init__(self, tokens: list[tuple[str, str, int]]) -> None:
        self.tokens = tokens
        self.index = 0

    def _peek(self) -> tuple[str, str, int] | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def _take(self) -> tuple[str, str, int]:
        token = self._peek()
        if token is None:
            raise ConditionError("the expression ends too early")
        self.index += 1
        return token

    def disjunction(self) -> Any:
        return self._chain("||", "or", self.conjunction)

    def conjunction(self) -> Any:
        return self._chain("&&", "and", self.primary)

    def _chain(self, operator: str, node: str, operand: Callable[[], Any]) -> Any:
        """``operand (operator operand)*``, grouped from the left as ``(node, left, right)``."""
        left = operand()
        while (token := self._peek()) is not None and token[1] == operator:
            self.index += 1
            left = (node, left, operand())
        return left

    def primary(self) -> Any:
        kind, value, at = self._take()
        if value == "(":
            inner = self.disjunction()
            if self._take()[1] != ")":
                raise ConditionError(f"the parenthesis at character {at + 1} is not closed")
            return inner
        left = self._operand(kind, value, at)
        token = self._peek()
        if token is None or token[1] not in ("==", "!=", "=~", "!~"):
            if left[0] != "var":
                raise ConditionError(f"{value!r} at character {at + 1} is not a condition")
            return ("present", left)
        self.index += 1
        op = token[1]
        right = self._operand(*self._take())
        if op in ("=~", "!~") and right[0] not in ("regex", "var"):
            raise ConditionError(f"{op} at character {token[2] + 1} expects a /regex/")
        return (op, left, right)

    def _operand(self, kind: str, value: str, at: int) -> Any:
        if kind == "var":
            return ("var", value.strip("${}"))
        if kind == "str":
            return ("str", re.sub(r"\\(.)", r"\1", value[1:-1]))
        if kind == "null":
            return ("null",)
        if kind == "regex":
            return ("regex", _compile(value, at))
        raise ConditionError(f"unexpected {value!r} at character {at + 1}")


def _compile(literal: str, at: int = 0) -> re.Pattern[str]:
    body, _, flags = literal[1:].rpartition("/")
    options = 0
    for flag in flags:
        if flag == "i":
            options |= re.I
        elif flag == "m":
            options |= re.M
        elif flag == "s":
            options |= re.S
        else:
            raise ConditionError(f"unknown regex flag {flag!r} at character {at + 1}")
    try:
        return re.compile(body.replace("\\/", "/"), options)
    except re.error as exc:
        raise ConditionError(f"invalid regex {literal!r}: {exc}") from None


def evaluate(tree: Any, variables: Mapping[str, str]) -> bool:
    """Whether the parsed expression holds for ``variables``."""
    kind = tree[0]
    if kind == "or":
        return evaluate(tree[1], variables) or evaluate(tree[2], variables)
    if kind == "and":
        return evaluate(tree[1], variables) and evaluate(tree[2], variables)
    if kind == "present":
        return bool(variables.get(tree[1][1]))
    left = _value(tree[1], variables)
    right = tree[2]
    if kind in ("==", "!="):
        equal = left == _value(right, variables)
        return equal if kind == "==" else not equal
    pattern = right[1] if right[0] == "regex" else _variable_regex(right, variables)
    found = pattern is not None and isinstance(left, str) and pattern.search(left) is not None
    return found if kind == "=~" else not found


def _value(operand: Any, variables: Mapping[str, str]) -> Any:
    if operand[0] == "var":
        return variables.get(operand[1])
    if operand[0] == "regex":
        return operand[1].pattern
    return operand[1] if operand[0] == "str" else None


def _variable_regex(operand: Any, variables: Mapping[str, str]) -> re.Pattern[str] | None:
    text = variables.get(operand[1]) or ""
    if not re.fullmatch(r"/.*/[a-z]*", text, re.S):
        return None
    try:
        return _compile(text)
    except ConditionError:
        return None
