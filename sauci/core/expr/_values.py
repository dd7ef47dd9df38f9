"""GitHub's values and coercions: truthiness, numbers, strings, comparisons.

Values are plain Python: ``None``, ``bool``, ``int``/``float``, ``str``, a
``Mapping`` (object) or a ``list``/``tuple`` (array). The rules are those of
GitHub's documentation and its implementation (actions/languageservices):

- falsy: ``false``, ``0``, ``-0``, ``NaN``, ``''``, ``null``; everything else is truthy;
- to a number: null 0, true 1, false 0, a string as JavaScript's ``Number()``
  reads it (``''`` is 0, ``0x1F`` is 31, otherwise NaN), arrays and objects NaN;
- loose comparison: when the kinds differ, a null or a boolean becomes a
  number, and a string compared with a number becomes a number; arrays and
  objects are never converted, and are equal only to themselves; a NaN is
  equal to nothing; strings compare ignoring case;
- to a string (``_json.to_string``): null '', booleans 'true'/'false',
  numbers as JavaScript prints them after rounding to 15 decimals, arrays and
  objects as JSON.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Context, Decimal
from typing import Any

__all__ = [
    "ARRAY",
    "BOOLEAN",
    "NULL",
    "NUMBER",
    "OBJECT",
    "STRING",
    "equals",
    "fold",
    "format_number",
    "greater",
    "kind",
    "less",
    "normal_number",
    "parse_number",
    "primitive",
    "text_of",
    "to_number",
    "truthy",
]

NULL, BOOLEAN, NUMBER, STRING, ARRAY, OBJECT = (
    "null",
    "boolean",
    "number",
    "string",
    "array",
    "object",
)

_DECIMAL = re.compile(r"[+-]?(?:Infinity|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)")
_RADIX = re.compile(r"0(?:[xX][0-9a-fA-F]+|[oO][0-7]+|[bB][01]+)")
_BASES = {"x": 16, "o": 8, "b": 2}
_FIFTEEN_DECIMALS = Decimal("1e-15")
_WIDE = Context(prec=40)  # 21 integer digits and 15 decimals fit


def kind(value: Any) -> str:
    """The expression kind of a Python value (anything unknown reads as a string)."""
    if value is None:
        return NULL
    if isinstance(value, bool):
        return BOOLEAN
    if isinstance(value, int | float):
        return NUMBER
    if isinstance(value, str):
        return STRING
    if isinstance(value, Mapping):
        return OBJECT
    if isinstance(value, list | tuple):
        return ARRAY
    return STRING


def primitive(value: Any) -> bool:
    return kind(value) not in (ARRAY, OBJECT)


def truthy(value: Any) -> bool:
    """GitHub's truthiness: false, 0, -0, NaN, '' and null are false."""
    k = kind(value)
    if k == NULL:
        return False
    if k == BOOLEAN:
        return bool(value)
    if k == NUMBER:
        return not (value == 0 or value != value)
    if k == STRING:
        return str(value) != ""
    return True


def parse_number(text: str) -> float:
    """``text`` read as JavaScript's ``Number()`` reads it: NaN when it is not a number."""
    text = text.strip()
    if not text:
        return 0.0
    if _DECIMAL.fullmatch(text):
        return float(text.replace("Infinity", "inf"))
    if _RADIX.fullmatch(text):
        return float(int(text[2:], _BASES[text[1].lower()]))
    return math.nan


def normal_number(value: float) -> int | float:
    """An integral double as an int (``711`` rather than ``711.0``); others as they are."""
    if math.isfinite(value) and value == int(value) and abs(value) < 2**53:
        return int(value)
    return value


def to_number(value: Any) -> float:
    k = kind(value)
    if k == NULL:
        return 0.0
    if k == BOOLEAN:
        return 1.0 if value else 0.0
    if k == NUMBER:
        try:
            return float(value)
        except OverflowError:  # an int beyond a double's range
            return math.inf if value > 0 else -math.inf
    if k == STRING:
        return parse_number(str(value))
    return math.nan


def format_number(value: float) -> str:
    """A number as GitHub prints it: at most 15 decimals, JavaScript's notation."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) < 2**53:
        return str(value)
    x = to_number(value)
    if x != x:
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    if abs(x) < 1e21:  # toFixed(15): the exact value rounded half away from zero
        x = float(Decimal(x).quantize(_FIFTEEN_DECIMALS, ROUND_HALF_UP, _WIDE))
    if x == 0:
        return "0"
    return _javascript(x)


def _javascript(x: float) -> str:
    """Number.prototype.toString of a finite, non-zero double."""
    sign, digit_tuple, exponent = Decimal(repr(x)).normalize().as_tuple()
    digits = "".join(map(str, digit_tuple))
    k = len(digits)
    n = int(exponent) + k  # the value is 0.DIGITS times 10**n
    prefix = "-" if sign else ""
    if k <= n <= 21:
        return prefix + digits + "0" * (n - k)
    if 0 < n <= 21:
        return prefix + digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return prefix + "0." + "0" * -n + digits
    mantissa = digits[0] + ("." + digits[1:] if k > 1 else "")
    return f"{prefix}{mantissa}e{'+' if n - 1 >= 0 else '-'}{abs(n - 1)}"


def text_of(value: Any) -> str:
    """The text of a value of kind string (a str, or anything unknown read as one)."""
    return value if isinstance(value, str) else str(value)


def fold(text: str) -> str:
    """``text`` upper-cased as GitHub compares strings (the dotless i, U+0131, stays as it is)."""
    if "\u0131" not in text:
        return text.upper()
    return "\u0131".join(part.upper() for part in text.split("\u0131"))


def _coerce(left: Any, right: Any) -> tuple[str, Any, str, Any]:
    lk, rk = kind(left), kind(right)
    while lk != rk:
        if lk == NUMBER and rk == STRING:
            right, rk = to_number(right), NUMBER
        elif (lk == STRING and rk == NUMBER) or lk in (NULL, BOOLEAN):
            left, lk = to_number(left), NUMBER
        elif rk in (NULL, BOOLEAN):
            right, rk = to_number(right), NUMBER
        else:
            break
    return lk, left, rk, right


def equals(left: Any, right: Any) -> bool:
    """GitHub's ``==``."""
    lk, left, rk, right = _coerce(left, right)
    if lk != rk:
        return False
    if lk == NULL:
        return True
    if lk == NUMBER:
        return bool(to_number(left) == to_number(right))  # NaN equals nothing
    if lk == STRING:
        return fold(text_of(left)) == fold(text_of(right))
    if lk == BOOLEAN:
        return bool(left) == bool(right)
    return left is right  # arrays and objects: the same instance only


def _units(text: str) -> bytes:
    """UTF-16 code units in order, as JavaScript compares strings."""
    return fold(text).encode("utf-16-be", "surrogatepass")


def less(left: Any, right: Any) -> bool:
    """GitHub's ``<`` (false whenever the two cannot be ordered)."""
    lk, left, rk, right = _coerce(left, right)
    if lk != rk:
        return False
    if lk == NUMBER:
        return to_number(left) < to_number(right)
    if lk == STRING:
        return _units(text_of(left)) < _units(text_of(right))
    if lk == BOOLEAN:
        return not left and bool(right)
    return False


def greater(left: Any, right: Any) -> bool:
    """GitHub's ``>``."""
    return less(right, left)
