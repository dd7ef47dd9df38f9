"""Reading typed values out of YAML nodes, with a located problem for each mistake.

The YAML resolver has already tagged every plain scalar (int, bool, ...);
the rules here decide what SauCI accepts for each kind of value, and the
:class:`Checker` collects every problem instead of stopping at the first.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence

from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from sauci.exceptions import Problem

__all__ = ["Checker", "TooManyNodes", "describe", "did_you_mean"]

_Y = "tag:yaml.org,2002:"
STR, INT, FLOAT, BOOL, NULL = _Y + "str", _Y + "int", _Y + "float", _Y + "bool", _Y + "null"
TIMESTAMP, MERGE, MAP, SEQ = _Y + "timestamp", _Y + "merge", _Y + "map", _Y + "seq"
# A value written without quotes may be resolved as any of these; where
# SauCI wants text it takes the characters exactly as written, so
# `python: 3.10` stays "3.10" and `MODE: 010` stays "010".
TEXT_TAGS = frozenset({STR, INT, FLOAT, BOOL, TIMESTAMP})
_KNOWN_TAGS = TEXT_TAGS | {NULL, MAP, SEQ}

MAX_NODES = 100_000
MAX_INT = 2**31 - 1  # counts and exit codes must fit every store's integer column
_MAX_MERGE_DEPTH = 10
_CONSTRUCTOR = SafeConstructor()
_IDENTIFIER = r"[A-Za-z_][A-Za-z0-9_]*"  # compiled by re at its first use


class TooManyNodes(Exception):
    """Raised (and turned into one problem) when aliases expand without end."""

    def __init__(self, node: Node) -> None:
        super().__init__(node)
        self.node = node


def describe(node: Node) -> str:
    """How a node reads in "expected X, got Y"."""
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    if node.tag == NULL:
        return "nothing (null)"
    if node.tag not in TEXT_TAGS:
        return f"a value tagged {_short_tag(node.tag)}"
    value = node.value
    return repr(value if len(value) <= 40 else value[:37] + "...")


def _short_tag(tag: str) -> str:
    return "!!" + tag[len(_Y) :] if tag.startswith(_Y) else tag


def did_you_mean(word: str, choices: Sequence[str]) -> str:
    """``"; did you mean 'timeout'?"`` or nothing."""
    import difflib  # only when a message needs it: it costs an import at start-up

    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def is_identifier(text: str) -> bool:
    return re.fullmatch(_IDENTIFIER, text) is not None


def variable_problem(name: str) -> str | None:
    """Why ``name`` cannot name an environment variable, or None if it can."""
    if is_identifier(name):
        return None
    return "is not a valid variable name; use letters, digits and _, not starting with a digit"


def is_null(node: Node) -> bool:
    """Whether ``node`` is written as nothing: for most keys, "use the default"."""
    return isinstance(node, ScalarNode) and node.tag == NULL


class Checker:
    """Collects problems for one file while values are read from its nodes."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[Problem] = []
        self.source: str | None = None  # the file's text, to place problems inside a value
        self._visits = 0

    def add(self, where: Node | tuple[int, int], message: str) -> None:
        if isinstance(where, Node):
            line, column = where.start_mark.line + 1, where.start_mark.column + 1
        else:
            line, column = where
        self.problems.append(Problem(file=self.file, line=line, column=column, message=message))

    def visit(self, node: Node) -> bool:
        """Count a node (aliases make a small file a huge tree); False if its tag is foreign."""
        self._visits += 1
        if self._visits > MAX_NODES:
            raise TooManyNodes(node)
        if node.tag not in _KNOWN_TAGS:
            self.add(
                node,
                f"unsupported YAML tag {_short_tag(node.tag)}; use plain values, lists "
                "and mappings",
            )
            return False
        return True

    # -- mappings ---------------------------------------------------------

    def items(self, node: MappingNode, where: str, depth: int = 0) -> list[tuple[str, Node, Node]]:
        """(key, key node, value node) in file order, merge keys applied, duplicates reported.

        ``where`` ends the messages, for example " in step 'test'".
        """
        result: list[tuple[str, Node, Node]] = []
        first_line: dict[str, int] = {}
        merges: list[Node] = []
        if not self.visit(node):
            return result
        for key, value in node.value:
            if key.tag == MERGE:
                merges.append(value)
                continue
            if not self.visit(key):
                continue
            if not isinstance(key, ScalarNode) or key.tag == NULL:
                self.add(key, f"expected a name as the key{where}, got {describe(key)}")
                continue
            name = key.value
            if name in first_line:
                self.add(
                    key, f"duplicate key {name!r}{where}; the first is on line {first_line[name]}"
                )
                continue
            first_line[name] = key.start_mark.line + 1
            result.append((name, key, value))
        if not merges:
            return result
        # As in PyYAML: merged keys come first, explicit keys win, and among
        # merged mappings the earlier one wins.
        merged: list[tuple[str, Node, Node]] = []
        for source in merges:
            for mapping in self._merge_sources(source, where, depth):
                for name, key, value in self.items(mapping, where, depth + 1):
                    if name not in first_line:
                        first_line[name] = key.start_mark.line + 1
                        merged.append((name, key, value))
        return merged + result

    def _merge_sources(self, source: Node, where: str, depth: int) -> list[MappingNode]:
        if depth >= _MAX_MERGE_DEPTH:
            self.add(source, f"merge keys ('<<') nest more than {_MAX_MERGE_DEPTH} deep{where}")
            return []
        if isinstance(source, MappingNode):
            return [source]
        if (
            isinstance(source, SequenceNode)
            and self.visit(source)
            and all(isinstance(item, MappingNode) for item in source.value)
        ):
            return list(source.value)
        self.add(
            source,
            f"'<<'{where}: expected a mapping or a list of mappings to merge, "
            f"got {describe(source)}",
        )
        return []

    def unknown_key(self, name: str, key: Node, where: str, known: Sequence[str]) -> None:
        self.add(key, f"unknown key {name!r}{where}{did_you_mean(name, known)}")

    def known_items(
        self, node: MappingNode, what: str, known: Sequence[str]
    ) -> tuple[list[tuple[str, Node, Node]], bool]:
        """The items of the mapping ``what`` whose key is one of ``known``, and
        whether it has no other key; each other key is reported."""
        found: list[tuple[str, Node, Node]] = []
        ok = True
        for name, key, value in self.items(node, f" in {what}"):
            if name in known:
                found.append((name, key, value))
            else:
                self.unknown_key(name, key, f" in {what}", known)
                ok = False
        return found, ok

    def mapping(self, node: Node, what: str, expected: str) -> MappingNode | None:
        if isinstance(node, MappingNode):
            return node
        if self.visit(node):
            self.add(node, f"{what}: expected {expected}, got {describe(node)}")
        return None

    def sequence(self, node: Node, what: str, expected: str) -> SequenceNode | None:
        """``node`` if it is a list; None once the problem is added."""
        if not isinstance(node, SequenceNode):
            if self.visit(node):
                self.add(node, f"{what}: expected {expected}, got {describe(node)}")
            return None
        return node if self.visit(node) else None

    # -- scalars ----------------------------------------------------------

    def text(self, node: Node, what: str, expected: str) -> str | None:
        """A scalar's text exactly as written (numbers and booleans included)."""
        if not self.visit(node):
            return None
        if isinstance(node, ScalarNode) and node.tag in TEXT_TAGS:
            if "\x00" in node.value:
                self.add(
                    node,
                    f"{what}: contains a NUL character (\\0), which no command, "
                    "name or path can hold",
                )
                return None
            return node.value
        self.add(node, f"{what}: expected {expected}, got {describe(node)}")
        return None

    def texts(self, node: Node, what: str, expected_one: str) -> list[tuple[str, Node]] | None:
        """A string or a list of strings, each with its node; None if neither.

        Bad items are reported and left out, so that the rest can still be
        checked.
        """
        if isinstance(node, SequenceNode):
            if not self.visit(node):
                return None
            found = []
            for item in node.value:
                text = self.text(item, what, expected_one)
                if text is not None:
                    found.append((text, item))
            return found
        text = self.text(node, what, f"{expected_one} or a list of them")
        return None if text is None else [(text, node)]

    def all_valid(
        self,
        texts: list[tuple[str, Node]],
        problem: Callable[[str], str | None],
        message: Callable[[str, str], str],
    ) -> bool:
        """Whether ``problem`` finds nothing wrong with any text; for each text
        it faults, ``message(text, fault)`` is added at the text's node."""
        ok = True
        for text, node in texts:
            fault = problem(text)
            if fault:
                self.add(node, message(text, fault))
                ok = False
        return ok

    def integer(self, node: Node, what: str, lowest: int, highest: int = MAX_INT) -> int | None:
        if not self.visit(node):
            return None
        expected = f"a whole number of at least {lowest}"
        if highest != MAX_INT:
            expected = f"a whole number from {lowest} to {highest}"
        if not (isinstance(node, ScalarNode) and node.tag == INT):
            self.add(node, f"{what}: expected {expected}, got {describe(node)}")
            return None
        try:
            value = _CONSTRUCTOR.construct_yaml_int(node)
        except ValueError:  # more digits than int() accepts
            value = None
        if value is None or value > highest:
            self.add(node, f"{what}: {describe(node)} is too large; the limit is {highest}")
            return None
        if value < lowest:
            self.add(node, f"{what}: expected {expected}, got {describe(node)}")
            return None
        return int(value)

    def number(self, node: Node, what: str, expected: str) -> float | None:
        """An int or float scalar as a finite float."""
        if not self.visit(node):
            return None
        value: float | None = None
        if isinstance(node, ScalarNode) and node.tag in (INT, FLOAT):
            try:
                if node.tag == INT:
                    value = float(_CONSTRUCTOR.construct_yaml_int(node))
                else:
                    value = _CONSTRUCTOR.construct_yaml_float(node)
            except (ValueError, OverflowError):
                value = math.inf
        if value is None or not math.isfinite(value):
            self.add(node, f"{what}: expected {expected}, got {describe(node)}")
            return None
        return value

    def boolean(self, node: Node, what: str) -> bool | None:
        if not self.visit(node):
            return None
        if isinstance(node, ScalarNode) and node.tag == BOOL:
            return bool(_CONSTRUCTOR.bool_values[node.value.lower()])
        self.add(node, f"{what}: expected true or false, got {describe(node)}")
        return None
