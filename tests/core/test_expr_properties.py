"""Hypothesis properties of expressions: GitHub's coercion rules hold for any values."""

from __future__ import annotations

import contextlib
import json
import math
import re
from decimal import Decimal
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from sauci.core.expr import (
    ExpressionError,
    evaluate,
    format_number,
    parse,
    parse_template,
    to_string,
    truthy,
)

NUMERIC_TEXT = st.sampled_from(
    ["", " ", "0", "1", "-1", "1.5", " 2 ", "0x10", "1e3", "abc", "true", "NaN", "Infinity"]
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**60), max_value=2**60),
    st.floats(),
    st.text(max_size=8),
    NUMERIC_TEXT,
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=6,
)


def run(source: str, **values: Any) -> Any:
    return evaluate(source, values)


@given(VALUES, VALUES)
def test_equality_is_symmetric_and_not_equal_is_its_negation(a: Any, b: Any) -> None:
    assert run("a == b", a=a, b=b) is run("b == a", a=a, b=b)
    assert run("a != b", a=a, b=b) is not run("a == b", a=a, b=b)


@given(VALUES, VALUES)
def test_order_is_consistent(a: Any, b: Any) -> None:
    less, greater = run("a < b", a=a, b=b), run("a > b", a=a, b=b)
    assert not (less and greater)
    assert less is run("b > a", a=a, b=b)
    assert run("a <= b", a=a, b=b) is (less or run("a == b", a=a, b=b))
    assert run("a >= b", a=a, b=b) is (greater or run("a == b", a=a, b=b))


@given(VALUES)
def test_not_not_is_truthiness(x: Any) -> None:
    assert run("!!x", x=x) is truthy(x)
    assert run("!x", x=x) is not truthy(x)


@given(VALUES, VALUES)
def test_or_and_return_an_operand(x: Any, y: Any) -> None:
    assert run("x || y", x=x, y=y) is (x if truthy(x) else y)
    assert run("x && y", x=x, y=y) is (y if truthy(x) else x)


@given(VALUES)
def test_arrays_and_objects_equal_only_themselves(x: Any) -> None:
    container = [x]
    assert run("c == c", c=container) is True
    assert run("c == d", c=container, d=[x]) is False
    assert run("c == x", c=container, x=x) is (x is container)


@given(st.floats(allow_nan=True, allow_infinity=True) | st.integers(-(2**70), 2**70))
def test_null_false_and_empty_string_equal_zero(x: Any) -> None:
    assert run("null == x", x=x) is (x == 0)
    assert run("'' == x", x=x) is (x == 0)
    assert run("false == x", x=x) is (x == 0)
    assert run("x == x", x=x) is (not (isinstance(x, float) and math.isnan(x)))


@given(st.integers(-(10**15), 10**15), st.integers(0, 15))
def test_number_string_number_round_trip(mantissa: int, decimals: int) -> None:
    """A number of at most 15 decimals and 15 digits prints as that decimal and reads back."""
    x = float(Decimal(mantissa).scaleb(-decimals))
    text = format_number(x)
    assert x == run("fromJSON(t)", t=text)
    assert run("t == x", t=text, x=x) is True
    assert x == float(text)
    assert not text.endswith(".0")
    assert Decimal(text) == Decimal(mantissa).scaleb(-decimals)


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_any_number_prints_as_a_number_literal_that_reads_back_close(x: float) -> None:
    text = format_number(x)
    read = run(text)
    assert math.isclose(read, x, abs_tol=1e-15, rel_tol=1e-15)
    assert run("t == x", t=text, x=read) is True


@given(st.text(alphabet=st.characters(blacklist_characters="\u0131"), max_size=20))
def test_strings_compare_ignoring_case(s: str) -> None:
    assert run("a == b", a=s, b=s.upper()) is True
    assert run("a == b", a=s.upper(), b=s) is True
    assert run("startsWith(a, b)", a=s + "tail", b=s.upper()) is True
    assert run("contains(a, b)", a="(" + s.upper() + ")", b=s) is (s.lower() == s.upper().lower())


@given(st.text(max_size=30))
def test_string_literals_read_back(s: str) -> None:
    literal = "'" + s.replace("'", "''") + "'"
    assert s == run(literal)
    assert s == run(f"format('{{0}}', {literal})")


FINITE_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**60), 2**60)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=6,
)


@given(FINITE_VALUES)
def test_to_json_from_json_round_trip(x: Any) -> None:
    back = run("fromJSON(toJSON(x))", x=x)
    assert to_string(x) == to_string(back)


@given(st.text(max_size=40))
def test_any_text_parses_or_fails_with_a_position_inside_it(text: str) -> None:
    try:
        expression = parse(text, line=5, col=3)
    except ExpressionError as exc:
        lines = text.split("\n")
        assert 5 <= exc.line <= 5 + len(lines) - 1
        last = len(lines[exc.line - 5]) + (3 if exc.line == 5 else 1)
        assert 1 <= exc.col <= last
    else:
        try:
            expression.evaluate({"a": [1, {"b": "c"}], "github": {}}, {})
        except ExpressionError as exc:
            assert exc.line >= 5


@given(
    st.lists(
        st.sampled_from(
            [
                "a",
                "b",
                "1",
                "'x'",
                "null",
                "(",
                ")",
                "!",
                "==",
                "<",
                "&&",
                "||",
                ".",
                "*",
                "[",
                "]",
                ",",
                "contains(",
                "format(",
            ]
        ),
        max_size=25,
    )
)
def test_token_soup_never_raises_anything_but_expression_error(tokens: list[str]) -> None:
    with contextlib.suppress(ExpressionError):
        run(" ".join(tokens), a={"b": [1, 2]}, b="B")


# -- against an oracle written from the documentation's tables ------------------------

JSON_NUMBER = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")
DOC_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-1000, 1000),
    st.floats(allow_infinity=False),
    st.sampled_from([0.0, -0.0, 1.0, math.nan]),
    st.integers(-1000, 1000).map(json.dumps),  # numeric strings in JSON's format
    st.floats(allow_nan=False, allow_infinity=False).map(json.dumps),
    st.sampled_from(["", "0", "1", "-0", "1.0", "1e0"]),
    st.text(alphabet="abcXYZ", max_size=4),  # never a number
)
DOC_VALUES = (
    DOC_SCALARS
    | st.lists(DOC_SCALARS, max_size=2)
    | st.dictionaries(st.text(max_size=2), DOC_SCALARS, max_size=2)
)


def doc_kind(x: Any) -> str:
    if x is None:
        return "null"
    if isinstance(x, bool):
        return "boolean"
    if isinstance(x, int | float):
        return "number"
    return "string" if isinstance(x, str) else "container"


def doc_number(x: Any) -> float:
    """The documentation's table: null 0, booleans 1/0, strings in JSON's number
    format (the empty string is 0), anything else NaN."""
    k = doc_kind(x)
    if k == "null":
        return 0.0
    if k in ("boolean", "number"):
        return float(x)
    if k == "string":
        if x == "":
            return 0.0
        return float(x) if JSON_NUMBER.fullmatch(x) else math.nan
    return math.nan


def doc_equal(a: Any, b: Any) -> bool:
    ka, kb = doc_kind(a), doc_kind(b)
    if ka != kb:
        return doc_number(a) == doc_number(b)  # NaN equals nothing
    if ka == "null":
        return True
    if ka == "string":
        return a.upper() == b.upper()
    if ka == "container":
        return a is b
    return bool(a == b)


def doc_falsy(x: Any) -> bool:
    return (
        x is None
        or x is False
        or x == ""
        or (doc_kind(x) == "number" and (x == 0 or math.isnan(x)))
    )


@given(DOC_VALUES, DOC_VALUES)
def test_equality_follows_the_documented_table(a: Any, b: Any) -> None:
    assert run("a == b", a=a, b=b) is doc_equal(a, b)


@given(DOC_VALUES, DOC_VALUES)
def test_relational_operators_follow_the_documented_rules(a: Any, b: Any) -> None:
    ka, kb = doc_kind(a), doc_kind(b)
    if ka == kb == "string":
        expected = a.upper() < b.upper()
    elif ka == kb == "container":
        expected = False
    elif ka == kb == "boolean":
        expected = a < b
    else:
        expected = doc_number(a) < doc_number(b)  # any NaN makes it false
    assert run("a < b", a=a, b=b) is expected


@given(DOC_VALUES)
def test_truthiness_follows_the_documented_falsy_values(x: Any) -> None:
    assert run("!!x", x=x) is not doc_falsy(x)
    assert truthy(x) is not doc_falsy(x)
    assert run("x || 'fallback'", x=x) == ("fallback" if doc_falsy(x) else x) or x != x


@given(st.integers(-(10**6), 10**6) | st.floats(allow_nan=False, allow_infinity=False))
def test_a_number_equals_its_printed_text_both_ways(x: float) -> None:
    text = format_number(x)
    assert run("a == b", a=x, b=text) is run("a == b", a=text, b=x)
    assert run("a == b", a=text, b=run(text)) is True


@given(
    st.lists(
        st.sampled_from(["x", "\n", " ", "${{ a }}", "${{ '}}' }}", "${{\n b }}"]), max_size=20
    ),
    st.integers(1, 50),
    st.integers(1, 50),
)
def test_template_positions_are_where_each_expression_is_in_the_file(
    pieces: list[str], line: int, col: int
) -> None:
    text = "".join(pieces)
    expressions = [p for p in parse_template(text, line=line, col=col) if not isinstance(p, str)]
    starts = [m.end() for m in re.finditer(r"\$\{\{", text)]
    assert len(starts) == len(expressions)
    for start, expression in zip(starts, expressions, strict=True):
        before = text[:start]
        expected_line = line + before.count("\n")
        expected_col = col + start if "\n" not in before else start - before.rindex("\n")
        assert (expected_line, expected_col) == (expression.source.line, expression.source.col)
