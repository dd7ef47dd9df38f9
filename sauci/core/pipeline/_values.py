"""Values with a shape of their own, read wherever a key takes one: env mappings,
durations, sizes and one entry of ``services``.

Each reader takes a node and returns what it holds, or None once the problem
is added to the checker; the step keys (``_step_keys``) store what they return.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from yaml.nodes import Node, ScalarNode

from sauci.core._converters import service_name_problem
from sauci.core.pipeline._nodes import (
    FLOAT,
    INT,
    STR,
    TEXT_TAGS,
    Checker,
    describe,
    is_null,
    variable_problem,
)
from sauci.core.pipeline._spec import MAX_MEMORY, SERVICE_KEYS, TIMEOUT_CEILING
from sauci.core.pipeline._units import DURATION_EXAMPLES, SIZE_EXAMPLES, parse_duration, parse_size

if TYPE_CHECKING:
    from sauci.core.step_parts import Service

__all__ = ["ValueReader"]

_T = TypeVar("_T")
_N = TypeVar("_N", int, float)


class ValueReader:
    """Reads the values that several keys share; problems go to ``chk``."""

    def __init__(self, chk: Checker) -> None:
        self.chk = chk

    def _env(
        self, node: Node, what: str, nodes: dict[str, tuple[str, Node]] | None = None
    ) -> dict[str, str] | None:
        """An env mapping; ``nodes`` (if given) gets each value's text and node."""
        chk = self.chk
        mapping = chk.mapping(node, what, "a mapping of variable names to values")
        if mapping is None:
            return None
        env: dict[str, str] = {}
        for name, key, value in chk.items(mapping, f" in {what}"):
            fault = variable_problem(name)
            if fault:
                chk.add(key, f"{what}: {name!r} {fault}")
            elif is_null(value):
                chk.add(key, f"{what}: {name} has no value; write {name}: '' for an empty one")
            else:
                text = chk.text(value, what, f"a value for {name} such as 1 or 'text'")
                if text is not None:
                    env[name] = text
                    if nodes is not None:
                        nodes[name] = (text, value)
        return env

    def _options(
        self,
        node: Node,
        what: str,
        expected: str,
        readers: Mapping[str, Callable[[Node, str], Any]],
    ) -> dict[str, Any] | None:
        """The mapping ``what`` of optional keys, each value read by the reader
        of its key (a null value: the default, left out); None once a problem
        (an unknown key, a value a reader rejects) is added."""
        chk = self.chk
        mapping = chk.mapping(node, what, expected)
        if mapping is None:
            return None
        found: dict[str, Any] = {}
        entries, ok = chk.known_items(mapping, what, tuple(readers))
        for name, _, value in entries:
            if not is_null(value):
                found[name] = readers[name](value, f"{name!r} of {what}")
                ok = ok and found[name] is not None
        return found if ok else None

    def _service(self, node: Node, what: str) -> Service | None:
        from sauci.core.step_parts import Service  # only for a step that has services

        chk = self.chk
        if isinstance(node, ScalarNode) and node.tag in TEXT_TAGS:
            image = chk.text(node, what, "an image name")
            if image is None:
                return None
            if not image.strip():
                chk.add(node, f"{what}: the image name is empty")
                return None
            name = _image_base(image)
            problem = service_name_problem(name)
            if problem:
                chk.add(
                    node,
                    f"{what}: the name {name!r} taken from the image {problem}; "
                    "write the mapping form with 'name'",
                )
                return None
            return Service(name=name, image=image)
        mapping = chk.mapping(
            node, what, "an image name or a mapping with 'name', 'image' and more"
        )
        if mapping is None:
            return None
        found: dict[str, Any] = {}
        items, ok = chk.known_items(mapping, what, SERVICE_KEYS)
        for key, _, value in items:
            if is_null(value) and key not in ("name", "image"):
                continue
            inner = f"{key!r} of {what}"
            result: Any = None
            if key == "name":
                result = chk.text(value, inner, "a service name such as 'cache'")
                if result is not None:
                    problem = service_name_problem(result)
                    if problem:
                        chk.add(value, f"{inner}: {result!r} {problem}")
                        result = None
            elif key == "image":
                result = chk.text(value, inner, "an image name such as 'redis:7'")
                if result is not None and not result.strip():
                    chk.add(value, f"{inner}: the image name is empty")
                    result = None
            elif key == "command":
                words = chk.texts(value, inner, "a word")
                result = None if words is None else tuple(w for w, _ in words)
            elif key == "env":
                result = self._env(value, inner)
            elif key == "ready":
                result = chk.text(value, inner, "a shell command such as 'redis-cli ping'")
                if result is not None and not result.strip():
                    chk.add(value, f"{inner}: the command is empty")
                    result = None
            else:
                result = self._duration(value, inner)
            if result is None:
                ok = False
            else:
                found[key] = result
        keys = {key for key, _, _ in items}
        for required in ("name", "image"):
            if required not in keys:
                chk.add(mapping, f"{what} has no {required!r}")
                ok = False
        if not ok:
            return None
        return Service(**found)

    def _duration(
        self, node: Node, what: str, *, not_positive: str = "expected more than 0 seconds"
    ) -> float | None:
        """Seconds from ``90s``, ``10m``, ``1h`` or a number, more than 0 and at
        most 30 days; None once the problem (``not_positive`` for <= 0) is added."""
        chk = self.chk
        expected = f"a duration such as {DURATION_EXAMPLES}"
        if not chk.visit(node):
            return None
        if isinstance(node, ScalarNode) and node.tag in (INT, FLOAT):
            seconds = chk.number(node, what, expected)
            if seconds is None:
                return None
        else:
            seconds = _parse_text(node, parse_duration)
        return self._positive(
            node, what, seconds, expected, not_positive, TIMEOUT_CEILING, "the ceiling of 30 days"
        )

    def _size(self, node: Node, what: str) -> int | None:
        chk = self.chk
        if not chk.visit(node):
            return None
        if isinstance(node, ScalarNode) and node.tag == INT:
            return chk.integer(node, what, 1, MAX_MEMORY)
        size = _parse_text(node, parse_size)  # whole bytes: more than 0 is at least 1
        expected = f"a size such as {SIZE_EXAMPLES}"
        return self._positive(node, what, size, expected, "expected at least 1 byte", MAX_MEMORY)

    def _positive(
        self,
        node: Node,
        what: str,
        value: _N | None,
        expected: str,
        not_positive: str,
        ceiling: float,
        ceiling_name: str | None = None,
    ) -> _N | None:
        """``value`` if it is more than 0 and at most ``ceiling``; None (no
        value: "expected ``expected``") once the problem is added. The message
        over the ceiling names it as ``ceiling_name``, or says "too large"."""
        got = describe(node)
        if value is None:
            self.chk.add(node, f"{what}: expected {expected}, got {got}")
        elif value <= 0:
            self.chk.add(node, f"{what}: {not_positive}, got {got}")
        elif value > ceiling:
            over = "is too large" if ceiling_name is None else f"is more than {ceiling_name}"
            self.chk.add(node, f"{what}: {got} {over}")
        else:
            return value
        return None


def _parse_text(node: Node, parse: Callable[[str], _T]) -> _T | None:
    """``parse`` of a string's text; None for another node or text it rejects."""
    if isinstance(node, ScalarNode) and node.tag == STR:
        with contextlib.suppress(ValueError):
            return parse(node.value)
    return None


def _image_base(image: str) -> str:
    """``redis`` for ``docker.io/library/redis:7@sha256:...``."""
    last = image.split("@", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    return last.split(":", 1)[0]
