"""GitHub Actions expressions: the documented examples and coercion tables."""

from __future__ import annotations

import math

import pytest

from sauci.core.expr import ExpressionError, evaluate, interpolate, parse, truthy
from sauci.exceptions import PipelineError

CONTEXTS = {
    "github": {
        "ref": "refs/heads/main",
        "event_name": "push",
        "event": {
            "issue": {"labels": [{"name": "bug"}, {"name": "Help Wanted"}, {"other": 1}]},
            "pull_request": None,
        },
    },
    "matrix": {"os": "ubuntu-latest", "python": "3.12", "node": 18},
    "env": {"MY_VAR": "value", "EMPTY": ""},
    "steps": {"build": {"outputs": {"version": "1.2"}, "outcome": "success"}},
    "fruits": [{"name": "apple", "quantity": 1}, {"name": "orange", "quantity": 2}],
}


def ev(source: str, **contexts: object) -> object:
    return evaluate(source, {**CONTEXTS, **contexts})


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        # the documentation's literals
        ("null", None),
        ("false", False),
        ("711", 711),
        ("-9.2", -9.2),
        ("0xff", 255),
        ("-2.99e-2", -0.0299),
        ("'It''s open source!'", "It's open source!"),
        ("'Mona the Octocat'", "Mona the Octocat"),
        ("1.5e3", 1500),
        (".5", 0.5),
        ("+1", 1),
        ("0o17", 15),
        ("0b101", 5),
        ("Infinity", math.inf),
        # operators and precedence
        ("!true", False),
        ("!0", True),
        ("!!'x'", True),
        ("1 < 2", True),
        ("2 <= 2", True),
        ("3 > 2", True),
        ("2 >= 3", False),
        ("1 == 1 && 2 == 2", True),
        ("false || 1 == 1", True),
        ("true || false && false", True),  # && binds tighter than ||
        ("(true || false) && false", False),
        ("!false == true", True),  # ! binds tighter than ==
        ("1 < 2 == true", True),  # < binds tighter than ==
        # && and || return operand values
        ("'a' && 'b'", "b"),
        ("'' && 'b'", ""),
        ("null || 'default'", "default"),
        ("0 || ''", ""),
        ("'x' || 'y'", "x"),
        ("env.EMPTY || 'fallback'", "fallback"),
        ("matrix.os == 'ubuntu-latest' && 'linux' || 'other'", "linux"),
        # the documentation's equality coercions
        ("null == 0", True),
        ("true == 1", True),
        ("false == 0", True),
        ("'' == 0", True),
        ("'' == null", True),
        ("'1' == 1", True),
        ("' 1 ' == 1", True),
        ("'0x10' == 16", True),
        ("'abc' == 0", False),
        ("'abc' == 'ABC'", True),
        ("'true' == true", False),  # 'true' is NaN as a number
        ("NaN == NaN", False),
        ("NaN != NaN", True),
        ("null == null", True),
        ("null == false", True),
        ("'a' < 'B'", True),  # case-insensitive
        ("'b' < 'A'", False),
        ("'10' > 9", True),
        ("false < true", True),
        ("true > 0", True),
        ("fromJSON('[]') == fromJSON('[]')", False),
        ("github.event == github.event", True),  # the same instance
        ("github.event != github.event", False),
        ("fromJSON('{}') == 0", False),
        ("fromJSON('[]') == null", False),
        ("fromJSON('[]') < fromJSON('[]')", False),
        # dereference
        ("github.ref", "refs/heads/main"),
        ("GITHUB.REF", "refs/heads/main"),
        ("github['ref']", "refs/heads/main"),
        ("github['RE' && 'REF']", "refs/heads/main"),
        ("github.nope", None),
        ("github.nope.deeper", None),
        ("github.event.pull_request.number", None),
        ("steps.build.outputs.version", "1.2"),
        ("steps.build-two.outputs.version", None),
        ("fruits[1].name", "orange"),
        ("fruits['1'].name", "orange"),
        ("fruits[1.7].name", "orange"),
        ("fruits[-1]", None),
        ("fruits[5]", None),
        ("github.ref[0]", None),
        # object filters
        ("fruits.*.name", ["apple", "orange"]),
        ("fruits[*].quantity", [1, 2]),
        ("github.event.issue.labels.*.name", ["bug", "Help Wanted"]),
        ("matrix.*", ["ubuntu-latest", "3.12", 18]),
        ("github.ref.*", []),
        ("fruits.*.name[0]", []),
        ("fruits.*.*", ["apple", 1, "orange", 2]),
        ("fruits.*.name == fruits.*.name", False),
    ],
)
def test_value(source: str, expected: object) -> None:
    assert expected == ev(source)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("contains('Hello world', 'llo')", True),
        ("contains('Hello world', 'LLO')", True),
        ("contains(github.event.issue.labels.*.name, 'bug')", True),
        ("contains(github.event.issue.labels.*.name, 'BUG')", True),
        ("contains(github.event.issue.labels.*.name, 'feature')", False),
        ('contains(fromJSON(\'["push", "pull_request"]\'), github.event_name)', True),
        ("contains(fromJSON('[1, 2]'), '2')", True),
        ("contains(12345, 234)", True),
        ("contains(github.event, 'issue')", False),
        ("contains('abc', fromJSON('[]'))", False),
        ("startsWith('Hello world', 'He')", True),
        ("startsWith('Hello world', 'he')", True),
        ("startsWith(github.ref, 'refs/tags/')", False),
        ("startsWith(fruits, 'a')", False),
        ("endsWith('Hello world', 'ld')", True),
        ("endsWith('Hello world', 'LD')", True),
        ("endsWith(1.50, '5')", True),
        ("format('Hello {0} {1} {2}', 'Mona', 'the', 'Octocat')", "Hello Mona the Octocat"),
        ("format('{{Hello {0} {1} {2}!}}', 'Mona', 'the', 'Octocat')", "{Hello Mona the Octocat!}"),
        ("format('{0}{0}', 'ab')", "abab"),
        ("format('{0} {1} {2}', null, true, 1.50)", " true 1.5"),
        ("format('no placeholders')", "no placeholders"),
        ("join(github.event.issue.labels.*.name, ', ')", "bug, Help Wanted"),
        ("join(fromJSON('[1, true, null, \"s\"]'))", "1,true,,s"),
        ("join('just a string', '-')", "just a string"),
        ("join(github.event, '-')", ""),
        ("join(fromJSON('[1,2]'), fromJSON('[]'))", "1,2"),
        ("toJSON(matrix)", '{\n  "os": "ubuntu-latest",\n  "python": "3.12",\n  "node": 18\n}'),
        ("toJSON(fromJSON('[]'))", "[]"),
        ("toJSON(fromJSON('{}'))", "{}"),
        ("toJSON(1.0)", "1"),
        ("toJSON('a\"b')", '"a\\"b"'),
        ("toJSON(null)", "null"),
        ("toJSON(NaN)", "null"),
        ('fromJSON(\'{"include": [{"a": 1}]}\').include[0].a', 1),
        ("fromJSON('true')", True),
        ("fromJSON(' 1e2 ')", 100),
        ("fromJSON('\"x\"')", "x"),
        ("fromJSON(toJSON(matrix)).OS", "ubuntu-latest"),
        ("CONTAINS('ab', 'B')", True),
        ("toJson(1)", "1"),
        ("case(matrix.os == 'windows-latest', 'pwsh', matrix.node > 10, 'bash', 'sh')", "bash"),
        ("case(false, 1, 2)", 2),
    ],
)
def test_function(source: str, expected: object) -> None:
    assert expected == ev(source)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, False),
        (False, False),
        (True, True),
        (0, False),
        (-0.0, False),
        (math.nan, False),
        (0.1, True),
        (-1, True),
        ("", False),
        ("0", True),
        ("false", True),
        ([], True),
        ({}, True),
    ],
)
def test_truthy(value: object, expected: bool) -> None:
    assert expected is truthy(value)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, ""),
        (True, "true"),
        (False, "false"),
        (711, "711"),
        (711.0, "711"),
        (-9.2, "-9.2"),
        (0.1 + 0.2, "0.3"),
        (1.5, "1.5"),
        (1e21, "1e+21"),
        (1e20, "100000000000000000000"),
        (123456789012345680000.0, "123456789012345680000"),
        (1e-7, "1e-7"),
        (1.5e-7, "1.5e-7"),
        (0.000001, "0.000001"),
        (1e-16, "0"),
        (-0.0, "0"),
        (math.inf, "Infinity"),
        (-math.inf, "-Infinity"),
        (math.nan, "NaN"),
        (2**60, "1152921504606847000"),
        ("text", "text"),
        ([1, "a"], '[\n  1,\n  "a"\n]'),
        ({"a": {"b": []}}, '{\n  "a": {\n    "b": []\n  }\n}'),
    ],
)
def test_interpolated_as_github_prints_values(value: object, text: str) -> None:
    assert f"<{text}>" == interpolate("<${{ v }}>", {"v": value})


def test_interpolate_many_lines_and_braces_in_strings() -> None:
    text = "echo ${{ matrix.os }}\necho '${{ format('{{0}}', 1) }}' ${{ '}}' }}\nno expression"
    assert "echo ubuntu-latest\necho '{0}' }}\nno expression" == interpolate(text, CONTEXTS)


def test_interpolate_never_expands_a_value_twice() -> None:
    contexts = {"env": {"A": "${{ env.B }}", "B": "secret"}}
    assert "${{ env.B }}" == interpolate("${{ env.A }}", contexts)


def test_text_without_expressions_is_returned_as_is() -> None:
    assert "plain $HOME {{ x }}" == interpolate("plain $HOME {{ x }}", {})


def test_whole_expression_with_delimiters_is_accepted() -> None:
    assert parse("${{ github.ref == 'refs/heads/main' }}").evaluate(CONTEXTS) is True
    assert parse("  ${{ true }}  ").evaluate({}) is True


def test_names_functions_and_references() -> None:
    expr = parse(
        "steps.build.outputs.version && success() || Matrix['os'] || env[matrix.k] || hashFiles('a')"
    )
    assert frozenset({"steps", "matrix", "env"}) == expr.contexts
    assert frozenset({"success", "hashfiles"}) == expr.functions
    assert expr.contexts | expr.functions == expr.names
    paths = [r.path for r in expr.references]
    assert [
        ("steps", "build", "outputs", "version"),
        ("matrix", "os"),
        ("env",),
        ("matrix", "k"),
    ] == paths
    assert (1, 1) == (expr.references[0].line, expr.references[0].col)


def test_caller_supplied_functions() -> None:
    calls: list[tuple[object, ...]] = []

    def hash_files(*patterns: object) -> str:
        calls.append(patterns)
        return "abc123"

    functions = {"hashFiles": hash_files, "success": lambda: True, "failure": lambda: False}
    assert "key-abc123" == evaluate(
        "format('key-{0}', hashFiles('**/requirements.txt', 'setup.py'))", {}, functions
    )
    assert [("**/requirements.txt", "setup.py")] == calls
    assert evaluate("SUCCESS() && !failure()", {}, functions) is True


def test_calling_a_function_not_supplied_names_it() -> None:
    with pytest.raises(ExpressionError, match=r"hashFiles\(\) is not available") as info:
        evaluate("'x' && hashfiles('a')", {}, {}, line=4, col=10)
    assert (4, 17) == (info.value.line, info.value.col)


def test_unknown_context_is_an_error_at_its_position() -> None:
    with pytest.raises(ExpressionError, match="unknown context 'secrets'") as info:
        evaluate("github.ref || secrets.TOKEN", {"github": {}}, line=2, col=3)
    assert (2, 17) == (info.value.line, info.value.col)


def test_short_circuit_does_not_evaluate_the_rest() -> None:
    assert evaluate("false && nope.x", {}) is False
    assert "y" == evaluate("'y' || hashFiles('x')", {}, {})


def test_expression_error_is_a_pipeline_error_with_a_problem() -> None:
    with pytest.raises(PipelineError) as info:
        parse("github.ref ==", line=7, col=12)
    error = info.value
    assert isinstance(error, ExpressionError)
    assert "ci.yml:7:25: unexpected end of expression: expected a value, a name or '('" == str(
        error.problem("ci.yml")
    )


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("format('{0}')", r"uses \{0\} but only 0 value"),
        ("format('{1}', 'a')", r"uses \{1\} but only 1 value"),
        ("format('{x}', 'a')", "format string is invalid"),
        ("format('{', 'a')", "format string is invalid"),
        ("format('}', 'a')", "lone '}'"),
        ("fromJSON('')", "empty"),
        ("fromJSON('{')", "fromJSON: "),
        ("fromJSON('NaN')", "not JSON"),
        ("case(1, 2, 3)", "not a boolean"),
    ],
)
def test_function_errors(source: str, message: str) -> None:
    with pytest.raises(ExpressionError, match=message) as info:
        evaluate(source, {}, line=3, col=1)
    assert (3, 1) == (info.value.line, info.value.col)


def test_documented_case_example_over_several_lines() -> None:
    text = """${{ case(
  github.ref == 'refs/heads/main', 'production',
  github.ref == 'refs/heads/staging', 'staging',
  startsWith(github.ref, 'refs/heads/feature/'), 'development',
  'unknown'
) }}"""
    for ref, expected in [
        ("refs/heads/main", "production"),
        ("refs/heads/staging", "staging"),
        ("refs/heads/feature/x", "development"),
        ("refs/tags/v1", "unknown"),
    ]:
        assert expected == interpolate(text, {"github": {"ref": ref}})


def test_documented_object_filter_on_an_object() -> None:
    vegetables = {
        "scallions": {"colors": ["green"], "ediblePortions": ["roots", "stalks"]},
        "beets": {"colors": ["purple"], "ediblePortions": ["roots", "stems", "leaves"]},
    }
    assert [["roots", "stalks"], ["roots", "stems", "leaves"]] == evaluate(
        "vegetables.*.ediblePortions", {"vegetables": vegetables}
    )
    assert ["roots", "stalks", "roots", "stems", "leaves"] == evaluate(
        "vegetables.*.ediblePortions.*", {"vegetables": vegetables}
    )


def test_documented_from_json_matrix_and_env_conversions() -> None:
    output = '{"include":[{"project":"foo","config":"Debug"},{"project":"bar","config":"Release"}]}'
    contexts = {
        "needs": {"job1": {"outputs": {"matrix": output}}},
        "env": {"continue": "true", "time": "3"},
    }
    matrix = evaluate("${{ fromJSON(needs.job1.outputs.matrix) }}", contexts)
    assert {
        "include": [{"project": "foo", "config": "Debug"}, {"project": "bar", "config": "Release"}]
    } == matrix
    assert evaluate("fromJSON(env.continue)", contexts) is True
    assert 3 == evaluate("fromJSON(env.time)", contexts)
    assert evaluate("env.time > 2 && env.time < 10", contexts) is True  # string vs number: numbers
    assert evaluate("env.time < '10'", contexts) is False  # two strings compare as text


def test_numeric_mapping_keys_are_found_by_their_text() -> None:
    assert "old" == evaluate("versions['3.1'] || versions.x", {"versions": {3.1: "old"}})


def test_expression_error_pickles_with_its_position() -> None:
    import pickle

    with pytest.raises(ExpressionError) as info:
        parse("a ==", line=2, col=3)
    copy = pickle.loads(pickle.dumps(info.value))
    assert (2, 7, info.value.message) == (copy.line, copy.col, copy.message)
    assert str(info.value) == str(copy)


def test_package_exports_exactly_its_public_api() -> None:
    import types

    import sauci.core.expr as package

    public = {
        name
        for name, value in vars(package).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert set(package.__all__) == public - {"annotations", "Any", "Callable", "Mapping"}


def test_status_functions_tell_whether_an_if_checks_status() -> None:
    from sauci.core.expr import STATUS_FUNCTIONS

    assert not parse("github.ref == 'x'").functions & STATUS_FUNCTIONS
    assert parse("Failure() && github.ref == 'x'").functions & STATUS_FUNCTIONS


def test_conditions_get_the_implicit_success_check() -> None:
    from sauci.core.expr import parse_condition

    status = {"success": lambda: False, "failure": lambda: True, "always": lambda: True}
    plain = parse_condition("${{ github.ref == 'refs/heads/main' }}")
    assert "success" in plain.functions
    assert plain.evaluate(CONTEXTS, status) is False  # a failed job skips it
    assert plain.evaluate(CONTEXTS, {**status, "success": lambda: True}) is True
    explicit = parse_condition("failure() && github.ref == 'refs/heads/main'")
    assert explicit.evaluate(CONTEXTS, status) is True
    assert parse_condition("always()").evaluate({}, status) is True
    with pytest.raises(ExpressionError) as info:
        parse_condition("github.ref ==", line=3, col=9)
    assert (3, 22) == (info.value.line, info.value.col)
