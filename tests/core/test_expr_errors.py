"""Expression errors point at the offending character, and hostile input stays cheap."""

from __future__ import annotations

import re

import pytest

from sauci.core.expr import (
    MAX_DEPTH,
    MAX_LENGTH,
    MAX_VALUE_CHARS,
    MAX_WORK,
    ExpressionError,
    evaluate,
    interpolate,
    parse,
    parse_template,
)


def error_of(source: str, **where: int) -> ExpressionError:
    with pytest.raises(ExpressionError) as info:
        parse(source, **where)
    return info.value


@pytest.mark.parametrize(
    ("source", "column", "message"),
    [
        ("github.ref == ", 15, "unexpected end of expression"),
        ("github.ref = 'x'", 12, r"unexpected symbol '=' \(did you mean '=='\?\)"),
        ("a & b", 3, "did you mean '&&'"),
        ("a | b", 3, "did you mean '||'"),
        ('github.ref == "main"', 15, "strings are written in single quotes"),
        ("'unterminated", 1, "unterminated string"),
        ("a == 'x' 'y'", 10, "unexpected \"'y'\""),
        ("(a == b", 8, r"expected '\)' to close the '\(' at column 1"),
        ("a)", 2, r"unexpected '\)'"),
        ("a[1", 4, r"expected '\]'"),
        ("a.", 3, r"a property name or '\*' after '\.'"),
        ("a.'b'", 3, "a property name"),
        ("nope(1)", 1, "unknown function 'nope'"),
        ("  contains('a')", 3, r"contains\(\) takes 2 arguments; got 1"),
        ("x && format()", 6, r"format\(\) takes at least 1 argument; got 0"),
        ("success(1)", 1, r"success\(\) takes 0 arguments; got 1"),
        ("join(1, 2, 3)", 1, r"join\(\) takes 1 to 2 arguments; got 3"),
        ("case(true, 1)", 1, "odd number of arguments"),
        ("contains('a' 'b')", 14, "expected ',' or '\\)'"),
        ("1 2", 3, "unexpected '2'"),
        ("1.2.3", 1, "not a number"),
        ("- 1", 1, "not a number"),
        ("a $ b", 3, r"unexpected symbol '\$'"),
        ("", 1, "the expression is empty"),
        ("   ", 1, "the expression is empty"),
        ("'x'.length", 4, "unexpected symbol '.length'"),
        ("[1]", 1, r"unexpected '\['"),
        ("*", 1, r"unexpected '\*'"),
        ("a[*", 4, r"expected '\]' after '\[\*'"),
        ("é", 1, "unexpected symbol 'é'"),
    ],
)
def test_error_column_points_at_the_offending_token(source: str, column: int, message: str) -> None:
    error = error_of(source)
    assert (1, column) == (error.line, error.col), str(error)
    assert error.message
    assert re.search(message, error.message), error.message


def test_positions_are_offset_by_where_the_expression_starts() -> None:
    error = error_of("a == ", line=12, col=30)
    assert (12, 35) == (error.line, error.col)


def test_positions_track_lines_inside_a_multi_line_expression() -> None:
    error = error_of("a &&\n  b ==\n    = c", line=3, col=9)
    assert (5, 5) == (error.line, error.col)


def test_whole_dollar_braces_positions_point_inside_them() -> None:
    error = error_of("${{ a ==  }}", line=2, col=7)
    assert (2, 17) == (error.line, error.col)  # the end of what is inside the braces


def test_text_after_the_closing_braces_is_an_error() -> None:
    error = error_of("${{ a }} && ${{ b }}", line=1, col=5)
    assert (1, 13) == (error.line, error.col)
    assert "one ${{ }}" in error.message


def test_interpolation_errors_carry_the_line_in_a_multi_line_text() -> None:
    text = "echo one\necho ${{ matrix.os }}\n  echo ${{ matrix.os == }}\n"
    with pytest.raises(ExpressionError) as info:
        interpolate(text, {"matrix": {"os": "x"}}, line=20, col=7)
    assert (22, 25) == (info.value.line, info.value.col)  # the end of the expression


def test_unclosed_interpolation_points_at_its_opening() -> None:
    with pytest.raises(ExpressionError, match="not closed") as info:
        parse_template("ok ${{ a }}\n  bad ${{ b ", line=4, col=1)
    assert (5, 7) == (info.value.line, info.value.col)


def test_evaluation_errors_point_at_the_call() -> None:
    with pytest.raises(ExpressionError, match="format string is invalid") as info:
        evaluate("true &&\n   format('{x}', 1)", {}, line=8, col=4)
    assert (9, 4) == (info.value.line, info.value.col)


def test_str_of_an_error_is_file_line_col_message() -> None:
    error = error_of("a ==", line=3, col=5)
    assert "wf.yml:3:9: unexpected end of expression: expected a value, a name or '('" == str(
        error.problem("wf.yml")
    )


# -- hostile input -----------------------------------------------------------------


def test_ten_thousand_open_parentheses_are_refused_at_the_limit() -> None:
    error = error_of("(" * 10_000 + "1" + ")" * 10_000)
    assert (1, MAX_DEPTH + 1) == (error.line, error.col)
    assert "nested more than" in error.message


def test_deep_nots_calls_and_brackets_are_refused() -> None:
    assert "nested" in error_of("!" * 10_000 + "true").message
    assert "nested" in error_of("format(" * 2_000 + "'x'" + ")" * 2_000).message
    assert "nested" in error_of("a" + "[a" * 5_000 + "]" * 5_000).message


def test_long_chains_of_operators_are_refused_not_recursed() -> None:
    assert "operations deep" in error_of("1" + " == 1" * 3_000).message
    assert "operations deep" in error_of("a" + ".b" * 5_000).message


def test_long_flat_or_chain_is_fine() -> None:
    source = " || ".join(["a"] * 4_000) + " || 'last'"
    assert "last" == evaluate(source, {"a": 0})


def test_nesting_up_to_the_limit_is_accepted() -> None:
    depth = MAX_DEPTH - 1
    assert 1 == evaluate("(" * depth + "1" + ")" * depth, {})


def test_a_huge_expression_is_refused_before_it_is_read() -> None:
    error = error_of("'" + "x" * 5_000_000 + "'")
    assert f"the limit is {MAX_LENGTH}" in error.message
    assert (1, 1) == (error.line, error.col)


def test_huge_values_from_contexts_are_handled_in_linear_time() -> None:
    big = "a" * 5_000_000
    assert evaluate("contains(x, 'b') || startsWith(x, 'aaa')", {"x": big}) is True


def test_format_cannot_build_an_exponential_string() -> None:
    source = "format('{0}{0}', " * 24 + "'xx'" + ")" * 24  # 2 ** 25 characters
    with pytest.raises(ExpressionError, match=f"longer than {MAX_VALUE_CHARS}"):
        evaluate(source, {})


def test_join_and_to_json_results_are_bounded() -> None:
    with pytest.raises(ExpressionError, match="join: the result is longer"):
        evaluate("join(x, '')", {"x": ["y" * 1000] * 2000})
    with pytest.raises(ExpressionError, match="toJSON: the result is longer"):
        evaluate("toJSON(x)", {"x": ["y" * 1000] * 2000})


def test_from_json_of_huge_or_deep_input_is_refused() -> None:
    with pytest.raises(ExpressionError, match="fromJSON: the text is"):
        evaluate("fromJSON(x)", {"x": "[" + "1," * 2_000_000 + "1]"})
    with pytest.raises(ExpressionError, match="fromJSON: the JSON is nested too deeply"):
        evaluate("fromJSON(x)", {"x": "[" * 500_000 + "]" * 500_000})
    with pytest.raises(ExpressionError, match="toJSON: the value is nested"):
        evaluate("toJSON(fromJSON(x))", {"x": "[" * 300 + "]" * 300})


def test_from_json_of_huge_numbers_does_not_hang() -> None:
    assert evaluate("fromJSON(x) > 1", {"x": "9" * 500_000}) is True


def test_interpolated_text_growth_is_bounded() -> None:
    with pytest.raises(ExpressionError, match="add more than"):
        interpolate("${{ x }}" * 2000, {"x": "a" * 100_000})


def test_many_expressions_in_one_text_are_fine() -> None:
    text = "${{ x }},\n" * 10_000  # positions are found in one pass, not once per expression
    assert "1,\n" * 10_000 == interpolate(text, {"x": 1})


def test_many_strings_before_a_far_closing_brace_are_scanned_once() -> None:
    with pytest.raises(ExpressionError, match=f"the limit is {MAX_LENGTH}"):
        interpolate("${{ " + "'a' " * 200_000 + "}}", {})
    with pytest.raises(ExpressionError, match="not closed") as info:
        parse_template("${{ a }}\n${{ " + "'a' " * 200_000, line=3)
    assert (4, 1) == (info.value.line, info.value.col)


def test_work_of_one_evaluation_is_bounded() -> None:
    text = "a" * 640_000  # 10,000 units each time a function handles it
    source = " || ".join(["contains(x, 'b')"] * 200)
    with pytest.raises(ExpressionError, match=f"more than {MAX_WORK} units of work") as info:
        evaluate(source, {"x": text})
    assert 1 == info.value.line
    assert info.value.col > 1  # at the call that ran out, not the start


def test_an_array_too_big_to_search_is_refused_before_it_is_searched() -> None:
    with pytest.raises(ExpressionError, match="units of work"):
        evaluate("contains(x, -1)", {"x": list(range(MAX_WORK + 1))})


def test_case_insensitive_lookups_in_huge_objects_are_counted() -> None:
    huge = {str(i): i for i in range(100_000)}
    with pytest.raises(ExpressionError, match="units of work"):
        evaluate(" || ".join(["x.A"] * 1_000), {"x": huge})
    assert 5 == evaluate("x['5'] || x.nope", {"x": huge})


def test_work_of_one_text_is_bounded_across_its_expressions() -> None:
    with pytest.raises(ExpressionError, match=f"more than {2 * MAX_WORK} units of work"):
        interpolate("${{ contains(x, 'b') }}" * 1_000, {"x": "a" * 640_000})
