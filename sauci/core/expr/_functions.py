"""The functions expressions may call: GitHub's built-ins, and those the caller supplies.

Names are case-insensitive. The built-ins are pure; ``hashFiles`` and the
status functions (``success``, ``failure``, ``always``, ``cancelled``) depend
on the run, so the caller hands them in (``functions=``); calling one it did
not hand in is an error naming it. A call of an unknown function, or with the
wrong number of arguments, is an error when the expression is parsed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sauci.core.expr._errors import MAX_VALUE_CHARS
from sauci.core.expr._json import JSONError, from_json, to_json, to_string
from sauci.core.expr._values import ARRAY, equals, fold, kind, primitive

__all__ = ["BUILTINS", "CALLER_SUPPLIED", "STATUS_FUNCTIONS", "FunctionFailed", "check_call"]

_MANY = 255  # GitHub's most arguments of one call


class FunctionFailed(ValueError):
    """A built-in function cannot give a value for its arguments (the message says why)."""


def _contains(search: Any, item: Any) -> bool:
    if primitive(search):
        return primitive(item) and to_string(item).lower() in to_string(search).lower()
    if kind(search) == ARRAY:
        return any(equals(item, element) for element in search)
    return False


def _starts_with(text: Any, prefix: Any) -> bool:
    if not (primitive(text) and primitive(prefix)):
        return False
    return fold(to_string(text)).startswith(fold(to_string(prefix)))


def _ends_with(text: Any, suffix: Any) -> bool:
    if not (primitive(text) and primitive(suffix)):
        return False
    return fold(to_string(text)).endswith(fold(to_string(suffix)))


def _format(template: Any, *values: Any) -> str:
    text = to_string(template)
    out: list[str] = []
    size = 0
    i, n = 0, len(text)
    while i < n:
        left, right = text.find("{", i), text.find("}", i)
        if left < 0 and right < 0:
            piece, i = text[i:], n
        elif left >= 0 and (right < 0 or left < right):
            if text.startswith("{{", left):
                piece, i = text[i : left + 1], left + 2
            else:
                digits = text[left + 1 : right] if right > left else ""
                if not (digits.isascii() and digits.isdigit()):
                    raise FunctionFailed(f"format: the format string is invalid: {text!r}")
                index = int(digits)
                if index >= len(values):
                    raise FunctionFailed(
                        f"format: the format string uses {{{index}}} but only "
                        f"{len(values)} value(s) follow it"
                    )
                piece, i = text[i:left] + to_string(values[index]), right + 1
        elif text.startswith("}}", right):
            piece, i = text[i : right + 1], right + 2
        else:
            raise FunctionFailed(f"format: the format string has a lone '}}': {text!r}")
        size += len(piece)
        if size > MAX_VALUE_CHARS:
            raise FunctionFailed(f"format: the result is longer than {MAX_VALUE_CHARS} characters")
        out.append(piece)
    return "".join(out)


def _join(items: Any, separator: Any = ",") -> str:
    if primitive(items):
        return to_string(items)
    if kind(items) != ARRAY:
        return ""
    glue = to_string(separator) if primitive(separator) else ","
    size = 0
    parts: list[str] = []
    for item in items:
        part = to_string(item)
        size += len(part) + len(glue)
        if size > MAX_VALUE_CHARS + len(glue):
            raise FunctionFailed(f"join: the result is longer than {MAX_VALUE_CHARS} characters")
        parts.append(part)
    return glue.join(parts)


def _to_json(value: Any) -> str:
    try:
        return to_json(value)
    except JSONError as exc:
        raise FunctionFailed(f"toJSON: {exc}") from None


def _from_json(text: Any) -> Any:
    try:
        return from_json(to_string(text))
    except JSONError as exc:
        raise FunctionFailed(f"fromJSON: {exc}") from None


def _case(*arguments: Any) -> Any:
    for i in range(0, len(arguments) - 1, 2):
        if not isinstance(arguments[i], bool):
            raise FunctionFailed(f"case: predicate {i // 2 + 1} is not a boolean")
        if arguments[i]:
            return arguments[i + 1]
    return arguments[-1]


# name (lower case) -> (as GitHub spells it, fewest arguments, most arguments, function)
BUILTINS: dict[str, tuple[str, int, int, Callable[..., Any]]] = {
    "contains": ("contains", 2, 2, _contains),
    "startswith": ("startsWith", 2, 2, _starts_with),
    "endswith": ("endsWith", 2, 2, _ends_with),
    "format": ("format", 1, _MANY, _format),
    "join": ("join", 1, 2, _join),
    "tojson": ("toJSON", 1, 1, _to_json),
    "fromjson": ("fromJSON", 1, 1, _from_json),
    "case": ("case", 3, _MANY, _case),
}

# Functions whose value depends on the run: the caller supplies them.
CALLER_SUPPLIED: dict[str, tuple[str, int, int]] = {
    "hashfiles": ("hashFiles", 1, _MANY),
    "success": ("success", 0, 0),
    "failure": ("failure", 0, 0),
    "always": ("always", 0, 0),
    "cancelled": ("cancelled", 0, 0),
}

# The status check functions: an `if:` that calls none of them means `success() && (...)`.
STATUS_FUNCTIONS = frozenset({"success", "failure", "always", "cancelled"})


def check_call(name: str, count: int) -> str | None:
    """Why a call of ``name`` with ``count`` arguments is wrong, or None when it is right."""
    key = name.lower()
    if key in BUILTINS:
        spelled, low, high, _function = BUILTINS[key]
    elif key in CALLER_SUPPLIED:
        spelled, low, high = CALLER_SUPPLIED[key]
    else:
        known = sorted(
            [spec[0] for spec in BUILTINS.values()] + [spec[0] for spec in CALLER_SUPPLIED.values()]
        )
        return f"unknown function {name!r} (the functions are {', '.join(known)})"
    if key == "case" and count % 2 == 0:
        return f"{spelled}() takes an odd number of arguments (predicate, value pairs and a default); got {count}"
    if low <= count <= high:
        return None
    if low == high:
        wanted = f"{low} argument{'s' if low != 1 else ''}"
    elif high == _MANY:
        wanted = f"at least {low} argument{'s' if low != 1 else ''}"
    else:
        wanted = f"{low} to {high} arguments"
    return f"{spelled}() takes {wanted}; got {count}"
