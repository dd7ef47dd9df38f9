"""Turning the bytes of ``.sauci.yml`` into YAML nodes that know their line and column.

Only composing happens here: no Python object is ever constructed from a
tag, so ``!!python/object`` and friends are inert nodes that the schema
rejects. Everything that can go wrong comes back as a located message, never
as an exception.
"""

from __future__ import annotations

from typing import NamedTuple

import yaml
from yaml.nodes import Node, ScalarNode

from sauci.core.yaml_depth import first_too_deep

try:
    from yaml import CSafeLoader as _BaseLoader
except ImportError:  # PyYAML built without libyaml
    from yaml import SafeLoader as _BaseLoader  # type: ignore[assignment]

__all__ = ["MAX_BYTES", "MAX_DEPTH", "Located", "compose"]

MAX_BYTES = 1024 * 1024
# libyaml's composer recurses in C and crashes the interpreter on deeply
# nested input (about 300 bytes of stack per level: 30,000 levels overflow
# the main thread, 4,000 a thread with a 1 MiB stack). A pipeline needs
# fewer than ten levels. libyaml 0.2.6 (in PyYAML 6.0.4's wheels) refuses
# 1,000 levels of its own; staying below that makes every PyYAML version
# accept and refuse the same files, with the same message.
MAX_DEPTH = 500


class Located(NamedTuple):
    """A problem found before there is a node to point at (1-based position)."""

    line: int
    column: int
    message: str


class _Loader(_BaseLoader):  # type: ignore[misc,valid-type]
    """The safe loader, with tag resolution made cheaper.

    Resolving is a third of the compose time; keys and many values repeat,
    so plain scalars are resolved once per file. SauCI registers no path
    resolvers, so the path bookkeeping is skipped.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._resolved: dict[str, str] = {}

    def resolve(self, kind: type, value: str, implicit: tuple[bool, bool]) -> str:
        if kind is ScalarNode:
            if not implicit[0]:
                return self.DEFAULT_SCALAR_TAG
            tag = self._resolved.get(value)
            if tag is None:
                tag = self._resolved[value] = super().resolve(kind, value, implicit)
            return tag
        return super().resolve(kind, value, implicit)

    def descend_resolver(self, current_node: object, current_index: object) -> None:
        pass

    def ascend_resolver(self) -> None:
        pass


def _position(text: str, index: int) -> tuple[int, int]:
    """1-based line and column of the character at ``index``."""
    index = max(0, min(index, len(text)))
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1


def decode(data: bytes) -> str | Located:
    """UTF-8 (with or without a BOM) or UTF-16 with a BOM, as YAML allows."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            return Located(1, 1, "the file starts like UTF-16 but is not valid UTF-16")
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        start = exc.start
        line = data.count(b"\n", 0, start) + 1
        line_start = data.rfind(b"\n", 0, start) + 1
        column = len(data[line_start:start].decode("utf-8", "replace")) + 1
        return Located(
            line,
            column,
            f"the file is not valid UTF-8 (byte 0x{data[start]:02x} at offset {start}); "
            "save it as UTF-8",
        )


def _depth_bound(text: str) -> int:
    """An upper bound of the nesting depth, from cheap string counts.

    Each flow level needs a "[" or "{"; each block level needs more
    indentation than its parent, or a "- " or "? " on the same line, so at
    most one level per column of the longest line.
    """
    longest = max(map(len, text.split("\n")))
    return text.count("[") + text.count("{") + longest + 2


# libyaml 0.2.6 stops at its own nesting limit, and its scanner reads up to
# 1024 characters ahead of the events it hands out, so on "[[[[..." it stops
# before the events reach MAX_DEPTH. PyYAML's pure-Python parser has no limit
# and does not recurse: it measures what libyaml would not. It is slower
# (about 6 s a MiB), so it runs only after libyaml stopped on an error.
_WALKERS: tuple[type, ...] = (
    (_Loader,) if _BaseLoader is yaml.SafeLoader else (_Loader, yaml.SafeLoader)
)


def _too_deep(text: str) -> Located | None:
    """Measure the real depth, with libyaml and, if it stopped, without."""
    for loader in _WALKERS:
        try:
            return _first_too_deep(text, loader)
        except yaml.YAMLError:
            continue
    return None  # compose() reports the syntax error, with the same position


def _first_too_deep(text: str, loader: type) -> Located | None:
    mark = first_too_deep(text, loader, MAX_DEPTH)
    if mark is None:
        return None
    return Located(
        mark.line + 1, mark.column + 1, f"the YAML is nested more than {MAX_DEPTH} levels deep"
    )


def compose(text: str) -> Node | Located | None:
    """The single document's root node, None for an empty file, or the problem."""
    if _depth_bound(text) > MAX_DEPTH:
        deep = _too_deep(text)
        if deep is not None:
            return deep
    try:
        return yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        return _marked(exc)
    except yaml.reader.ReaderError as exc:
        line, column = _position(text, exc.position)
        char = exc.character if isinstance(exc.character, int) else ord(exc.character)
        return Located(line, column, f"invalid YAML: character U+{char:04X}: {exc.reason}")
    except yaml.YAMLError as exc:
        return Located(1, 1, f"invalid YAML: {exc}")
    except UnicodeEncodeError as exc:  # libyaml encodes str input as UTF-8
        line, column = _position(text, exc.start)
        char = ord(text[exc.start]) if exc.start < len(text) else 0
        return Located(
            line, column, f"the text holds U+{char:04X}, a lone surrogate that is not Unicode"
        )
    except RecursionError:  # the pure-Python composer recurses too
        return Located(1, 1, "the YAML is nested too deeply")


def _marked(exc: yaml.MarkedYAMLError) -> Located:
    mark = exc.problem_mark or exc.context_mark
    line, column = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
    if exc.context == "expected a single document in the stream":
        return Located(
            line,
            column,
            "expected one YAML document, found a second one; remove the '---' line "
            "or keep one pipeline per file",
        )
    problem = exc.problem or "syntax error"
    if exc.context:
        return Located(line, column, f"invalid YAML: {problem} ({exc.context})")
    return Located(line, column, f"invalid YAML: {problem}")
