"""How deep a YAML document nests, found without recursion, so that hostile nesting
in a pushed file costs neither the stack nor more than one pass over its events."""

from __future__ import annotations

import yaml

__all__ = ["first_too_deep"]


def first_too_deep(text: str, loader: type, max_depth: int) -> yaml.Mark | None:
    """Where the first collection nested more than ``max_depth`` deep starts, or None.

    Walks the event stream of ``loader``; a syntax error raises yaml.YAMLError.
    """
    depth = 0
    for event in yaml.parse(text, Loader=loader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > max_depth:
                return event.start_mark
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
    return None
