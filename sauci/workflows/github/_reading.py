"""A workflow file's YAML as plain values that remember where they were written.

GitHub reads workflows as YAML 1.2: ``on`` is a key, not ``True``. Only
plain ``true``/``false``, numbers and ``null`` are resolved; every other
scalar stays a string. Mappings and lists are ``LMap``/``LList`` and strings
``LStr``, each with the ``line``/``col`` they start at (1-based); a mapping
also keeps where each of its keys' values start, so a number or a boolean
can be located through its parent.
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from sauci.exceptions import Problem

__all__ = ["LList", "LMap", "LStr", "LocalActions", "Problems", "parse_yaml", "where"]

_INT = re.compile(r"[-+]?(0|[1-9][0-9]*)\Z")
# A longer integer is kept as text: int() refuses more than 4,300 digits, and
# no number a workflow means has this many.
_MAX_DIGITS = 100
_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?\Z")
MAX_BYTES = 1024 * 1024


class LStr(str):
    """A string from the file, with its position."""

    line: int = 0
    col: int = 0


class LMap(dict[str, Any]):
    """A mapping from the file: its position and each value's position."""

    line: int = 0
    col: int = 0

    def __init__(self) -> None:
        super().__init__()
        self.positions: dict[str, tuple[int, int]] = {}

    def at(self, key: str) -> tuple[int, int]:
        """Where the value of ``key`` starts (the mapping's position if absent)."""
        return self.positions.get(key, (self.line, self.col))


class LList(list[Any]):
    """A list from the file, with its position and each item's."""

    line: int = 0
    col: int = 0

    def __init__(self) -> None:
        super().__init__()
        self.positions: list[tuple[int, int]] = []


def where(value: Any, default: tuple[int, int] = (0, 0)) -> tuple[int, int]:
    """The (line, col) of a value read from the file, else ``default``."""
    line = getattr(value, "line", 0)
    if line:
        return line, value.col
    return default


class LocalActions:
    """The local actions of one workflow: uses in the current job entry, and
    each action file read once (its parsed document, None if refused)."""

    def __init__(self) -> None:
        self.uses = 0  # in this job entry, nested ones included
        self.over = False  # the uses limit was said (once per workflow)
        self.bytes_read = 0  # of the files below, each counted once
        self.files: dict[str, tuple[str, LMap] | None] = {}


class Problems:
    """The problems of one file, collected so all are reported together."""

    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.items: list[Problem] = []
        # Shared with the Problems of the actions this file uses
        # (sauci.workflows.github._composite).
        self.local_actions = LocalActions()

    def add(self, at: tuple[int, int] | Any, message: str) -> None:
        line, col = at if isinstance(at, tuple) else where(at)
        self.items.append(Problem(file=self.filename, line=line, column=col, message=message))

    def __bool__(self) -> bool:
        return bool(self.items)


class _Loader(yaml.SafeLoader):
    """Composes nodes only; no tag constructs anything."""


def parse_yaml(text: str, problems: Problems) -> Any:
    """The document in ``text`` as located plain values; None (and a problem) if unreadable."""
    if len(text.encode("utf-8", "replace")) > MAX_BYTES:
        problems.add((1, 1), f"the file is larger than {MAX_BYTES} bytes")
        return None
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problems.add((line, col), f"not valid YAML: {exc.problem or exc}")
        return None
    except (yaml.YAMLError, RecursionError) as exc:
        problems.add((1, 1), f"not valid YAML: {exc}")
        return None
    if node is None:
        return None
    return _value(node, problems, 0)


def _value(node: Node, problems: Problems, depth: int) -> Any:
    line, col = node.start_mark.line + 1, node.start_mark.column + 1
    if depth > 100:
        problems.add((line, col), "nested too deeply")
        return None
    if isinstance(node, ScalarNode):
        return _scalar(node, line, col)
    if isinstance(node, SequenceNode):
        items = LList()
        items.line, items.col = line, col
        for child in node.value:
            items.append(_value(child, problems, depth + 1))
            items.positions.append((child.start_mark.line + 1, child.start_mark.column + 1))
        return items
    assert isinstance(node, MappingNode)
    mapping = LMap()
    mapping.line, mapping.col = line, col
    for key_node, value_node in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":  # << merge keys
            merged = _value(value_node, problems, depth + 1)
            for part in merged if isinstance(merged, list) else [merged]:
                if isinstance(part, LMap):
                    for k, v in part.items():
                        mapping.setdefault(k, v)
                        mapping.positions.setdefault(k, part.at(k))
            continue
        key = _value(key_node, problems, depth + 1)
        if not isinstance(key, str):
            key_text = LStr("" if key is None else str(key).lower())
            key_text.line, key_text.col = (
                key_node.start_mark.line + 1,
                key_node.start_mark.column + 1,
            )
            key = key_text
        if key in mapping:
            problems.add(where(key), f"the key {key!r} is given twice")
        mapping[key] = _value(value_node, problems, depth + 1)
        mapping.positions[key] = (value_node.start_mark.line + 1, value_node.start_mark.column + 1)
    return mapping


def _scalar(node: ScalarNode, line: int, col: int) -> Any:
    text = node.value
    if node.style is None and node.tag != "tag:yaml.org,2002:str":
        if text in ("true", "True", "TRUE"):
            return True
        if text in ("false", "False", "FALSE"):
            return False
        if text in ("", "~", "null", "Null", "NULL"):
            return None
        if _INT.match(text) and len(text) <= _MAX_DIGITS:
            return int(text)
        if _FLOAT.match(text) and any(c.isdigit() for c in text):
            return float(text)
    value = LStr(text)
    value.line, value.col = line, col
    return value
