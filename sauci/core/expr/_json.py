"""Values as text (``to_string``), and toJSON and fromJSON, bounded: JSON text as JavaScript's ``JSON.stringify(v, null, 2)``
writes it, and JSON read into plain values with numbers as GitHub holds them."""

from __future__ import annotations

import json
from typing import Any

from sauci.core.expr._errors import MAX_JSON_CHARS, MAX_TREE_DEPTH, MAX_VALUE_CHARS
from sauci.core.expr._values import (
    ARRAY,
    BOOLEAN,
    NULL,
    NUMBER,
    OBJECT,
    STRING,
    format_number,
    kind,
    normal_number,
    text_of,
)

__all__ = ["JSONError", "from_json", "to_json", "to_string"]

_string = json.JSONEncoder(ensure_ascii=False).encode


class JSONError(ValueError):
    """A value that cannot be written or a text that cannot be read (the message says why)."""


def to_json(value: Any) -> str:
    """``value`` as indented JSON, at most MAX_VALUE_CHARS long."""
    parts: list[str] = []
    size = 0

    def emit(text: str) -> None:
        nonlocal size
        size += len(text)
        if size > MAX_VALUE_CHARS:
            raise JSONError(f"the result is longer than {MAX_VALUE_CHARS} characters")
        parts.append(text)

    def write(item: Any, depth: int) -> None:
        if depth > MAX_TREE_DEPTH:
            raise JSONError(f"the value is nested more than {MAX_TREE_DEPTH} levels deep")
        k = kind(item)
        if k == NULL:
            emit("null")
        elif k == BOOLEAN:
            emit("true" if item else "false")
        elif k == NUMBER:
            text = format_number(item)
            emit("null" if text in ("NaN", "Infinity", "-Infinity") else text)
        elif k in (ARRAY, OBJECT):
            pairs = list(item.items()) if k == OBJECT else list(enumerate(item))
            opening, closing = ("{", "}") if k == OBJECT else ("[", "]")
            if not pairs:
                emit(opening + closing)
                return
            inner = "\n" + "  " * (depth + 1)
            emit(opening)
            for i, (key, child) in enumerate(pairs):
                emit(("," if i else "") + inner)
                if k == OBJECT:
                    emit(_string(str(key)) + ": ")
                write(child, depth + 1)
            emit("\n" + "  " * depth + closing)
        else:
            emit(_string(str(item)))

    write(value, 0)
    return "".join(parts)


def _no_constant(name: str) -> Any:
    raise JSONError(f"{name} is not JSON")


def from_json(text: str) -> Any:
    """The value of the JSON ``text`` (at most MAX_JSON_CHARS characters)."""
    if not text.strip():
        raise JSONError("the text is empty")
    if len(text) > MAX_JSON_CHARS:
        raise JSONError(f"the text is {len(text)} characters long; the limit is {MAX_JSON_CHARS}")
    try:
        return json.loads(
            text,
            parse_int=lambda s: normal_number(float(s)),
            parse_float=lambda s: normal_number(float(s)),
            parse_constant=_no_constant,
        )
    except RecursionError:
        raise JSONError("the JSON is nested too deeply") from None
    except json.JSONDecodeError as exc:
        raise JSONError(f"{exc.msg} at line {exc.lineno} column {exc.colno}") from None


def to_string(value: Any) -> str:
    """``value`` as text: null '', true 'true', numbers as GitHub prints them, arrays and objects as JSON."""
    k = kind(value)
    if k == NULL:
        return ""
    if k == BOOLEAN:
        return "true" if value else "false"
    if k == NUMBER:
        return format_number(value)
    if k == STRING:
        return text_of(value)
    return to_json(value)
