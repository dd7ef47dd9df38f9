"""``.gitlab-ci.yml`` text turned into plain values that remember where they were written.

Mappings become :class:`Map` (a dict with the position of the mapping and of
each key), lists :class:`Seq`, scalars the Python value YAML resolves them to
(``3.10`` is the float 3.1, as GitLab reads it). YAML merge keys (``<<:``)
are applied here; ``!reference [job, key]`` becomes a :class:`Reference`,
resolved once every included file is merged. Nothing is constructed from a
tag: any other tag is a problem, and aliases that expand past
:data:`MAX_VALUES` values are a problem, not a hang.
"""

from __future__ import annotations

from typing import Any

import attrs
import yaml
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from sauci.core.yaml_depth import first_too_deep

try:
    from yaml import CSafeLoader as _Loader
except ImportError:  # PyYAML built without libyaml
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

__all__ = ["MAX_BYTES", "Map", "Pos", "Reference", "Seq", "YamlProblem", "load_text"]

MAX_BYTES = 1024 * 1024
MAX_VALUES = 100_000
MAX_DEPTH = 100
_Y = "tag:yaml.org,2002:"
_CONSTRUCTOR = SafeConstructor()
_TAGS = frozenset(
    _Y + t for t in ("str", "int", "float", "bool", "null", "timestamp", "map", "seq")
)


@attrs.frozen
class Pos:
    """A place in a file (1-based line and column)."""

    file: str
    line: int
    column: int


class YamlProblem(Exception):
    """The text is not YAML SauCI can read; carries where and why."""

    def __init__(self, pos: Pos, message: str) -> None:
        super().__init__(message)
        self.pos = pos
        self.message = message


class Map(dict[str, Any]):
    """A mapping with its own position and each key's."""

    def __init__(self, pos: Pos) -> None:
        super().__init__()
        self.pos = pos
        self.at: dict[str, Pos] = {}

    def where(self, key: str) -> Pos:
        return self.at.get(key, self.pos)

    def put(self, key: str, value: Any, pos: Pos) -> None:
        self[key] = value
        self.at[key] = pos


class Seq(list[Any]):
    """A list with its own position and each item's."""

    def __init__(self, pos: Pos) -> None:
        super().__init__()
        self.pos = pos
        self.at: list[Pos] = []

    def where(self, index: int) -> Pos:
        return self.at[index] if 0 <= index < len(self.at) else self.pos

    def add(self, value: Any, pos: Pos) -> None:
        self.append(value)
        self.at.append(pos)


class Reference(Seq):
    """``!reference [job, key, ...]``: a path to a value elsewhere in the configuration."""


def _pos(file: str, node: Node) -> Pos:
    mark = node.start_mark
    return Pos(file, mark.line + 1, mark.column + 1)


def load_text(text: str, file: str) -> Any:
    """The document's value (None for an empty file); raises YamlProblem."""
    if len(text) > MAX_BYTES:
        raise YamlProblem(Pos(file, 1, 1), f"the file is larger than {MAX_BYTES // 1024} KiB")
    try:
        mark = first_too_deep(text, _Loader, MAX_DEPTH)
        if mark is not None:
            raise YamlProblem(
                Pos(file, mark.line + 1, mark.column + 1),
                f"the YAML is nested more than {MAX_DEPTH} levels deep",
            )
        root = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        pos = Pos(file, mark.line + 1, mark.column + 1) if mark else Pos(file, 1, 1)
        message = f"invalid YAML: {exc.problem or exc.context or 'syntax error'}"
        raise YamlProblem(pos, message) from None
    except (yaml.YAMLError, UnicodeError, RecursionError) as exc:
        raise YamlProblem(Pos(file, 1, 1), f"invalid YAML: {exc}") from None
    if root is None:
        return None
    return _Converter(file).value(root)


class _Converter:
    def __init__(self, file: str) -> None:
        self.file = file
        self.count = 0

    def value(self, node: Node) -> Any:
        self.count += 1
        if self.count > MAX_VALUES:
            raise YamlProblem(
                _pos(self.file, node),
                f"the file expands to more than {MAX_VALUES} values (YAML aliases repeat "
                "what they point to); make it smaller",
            )
        if node.tag == "!reference":
            return self._reference(node)
        if node.tag not in _TAGS:
            raise YamlProblem(
                _pos(self.file, node),
                f"the tag {node.tag} is not understood (GitLab files use !reference only)",
            )
        if isinstance(node, MappingNode):
            return self._mapping(node)
        if isinstance(node, SequenceNode):
            seq = Seq(_pos(self.file, node))
            for item in node.value:
                seq.add(self.value(item), _pos(self.file, item))
            return seq
        return self._scalar(node)

    def _scalar(self, node: Node) -> Any:
        if node.tag == _Y + "timestamp":
            return str(node.value)
        make = _CONSTRUCTOR.yaml_constructors.get(node.tag)
        if make is None or not isinstance(node, ScalarNode):
            return str(node.value)
        try:
            return make(_CONSTRUCTOR, node)
        except (ConstructorError, ValueError, OverflowError):
            return str(node.value)

    def _reference(self, node: Node) -> Reference:
        ref = Reference(_pos(self.file, node))
        if not isinstance(node, SequenceNode) or not node.value:
            raise YamlProblem(ref.pos, "!reference expects a list like [.job, script]")
        for item in node.value:
            if not isinstance(item, ScalarNode):
                raise YamlProblem(_pos(self.file, item), "!reference names keys as plain text")
            ref.add(str(item.value), _pos(self.file, item))
        return ref

    def _mapping(self, node: MappingNode) -> Map:
        out = Map(_pos(self.file, node))
        merged: list[Map] = []
        for key_node, value_node in node.value:
            if key_node.tag == _Y + "merge":
                merged.extend(self._merge_sources(value_node))
                continue
            if not isinstance(key_node, ScalarNode):
                raise YamlProblem(_pos(self.file, key_node), "a key must be plain text")
            key = str(key_node.value)
            out.pop(key, None)  # GitLab's YAML reader keeps the last of repeated keys
            out.put(key, self.value(value_node), _pos(self.file, key_node))
        for source in merged:  # explicit keys win, then earlier merge sources
            for key, value in source.items():
                if key not in out:
                    out.put(key, value, source.where(key))
        return out

    def _merge_sources(self, node: Node) -> list[Map]:
        value = self.value(node)
        items = value if isinstance(value, Seq) and not isinstance(value, Reference) else [value]
        if not all(isinstance(item, Map) for item in items):
            raise YamlProblem(_pos(self.file, node), "'<<' merges a mapping or a list of mappings")
        return list(items)
