"""Hypothesis properties of expressions: GitHub's coercion rules hold for any values."""

from __future__ import annotations

import contextlib
import math
from decimal import Decimal
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from sauci.core.expr import ExpressionError, evaluate, format_number, parse, to_string, truthy

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


@given(VALUES)
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
