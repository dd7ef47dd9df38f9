"""``${{ ... }}`` expansion: references and caller-given functions, nothing else."""

from __future__ import annotations

import os

import pytest

from sauci.core.expressions import ExpressionError, expand, find_expressions, problems
from sauci.exceptions import ConfigError

CONTEXT = {"matrix": {"python": "3.12", "os": "linux"}, "env": {"MODE": "fast"}}


def test_references_are_replaced_with_or_without_spaces():
    text = "py${{ matrix.python }}-${{matrix.os}}-${{   env.MODE\t}}"
    assert "py3.12-linux-fast" == expand(text, CONTEXT)


def test_text_without_expressions_is_returned_as_is():
    assert "echo ${HOME} $((1+1)) {{ x }} $" == expand("echo ${HOME} $((1+1)) {{ x }} $", {})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("${{ matrix.pyhton }}", "the matrix has no variable 'pyhton'; did you mean 'python'?"),
        ("${{ matrx.python }}", "there is no context 'matrx'; did you mean 'matrix'?"),
        ("${{ env.HOME }}", "'HOME' is not set in the pipeline's env"),
        ("${{ secrets.TOKEN }}", "there is no context 'secrets'"),
        ("${{ }}", "uses ${{ }}, which is not an expression SauCI reads"),
        ("${{ matrix.py", "uses '${{' without a closing '}}'"),
        ("${{ hashFiles('x') }}", "there is no function 'hashFiles'"),
    ],
)
def test_unknown_or_misspelt_expressions_are_errors(text, message):
    with pytest.raises(ExpressionError) as caught:
        expand("echo " + text, CONTEXT)
    assert message in str(caught.value)
    assert 5 == caught.value.offset
    assert isinstance(caught.value, ConfigError)  # a user's error: exit code 2, no traceback


@pytest.mark.parametrize(
    "code",
    [
        "__import__('os').system('touch /tmp/pwned')",
        "matrix.py + 1",
        "env['MODE']",
        "matrix.py.__class__",
        "(lambda: 1)()",
        "open('/etc/passwd').read()",
        "matrix.__dict__",
        "env.MODE || 'x'",
    ],
)
def test_expressions_cannot_run_code(code, tmp_path):
    with pytest.raises(ExpressionError):
        expand("${{ " + code + " }}", CONTEXT)
    assert problems("${{ " + code + " }}", {"matrix": ["py"], "env": ["MODE"]})


def test_env_is_the_pipeline_s_env_never_the_server_s(monkeypatch):
    monkeypatch.setenv("SAUCI_SERVER_TOKEN", "s3cr3t")
    with pytest.raises(ExpressionError, match="not set in the pipeline's env"):
        expand("${{ env.SAUCI_SERVER_TOKEN }}", CONTEXT)
    assert "SAUCI_SERVER_TOKEN" in os.environ


def test_values_are_not_expanded_again():
    context = {"matrix": {"x": "${{ env.SECRET }}"}, "env": {"SECRET": "no"}}
    assert "${{ env.SECRET }}!" == expand("${{ matrix.x }}!", context)


def test_shell_metacharacters_are_put_in_as_they_are():
    """In ``run`` it is text substitution, as in GitHub Actions."""
    value = "'; rm -rf / #$(id)`x`\"\\"
    assert f"echo {value}" == expand("echo ${{ matrix.v }}", {"matrix": {"v": value}})


def test_functions_are_only_those_handed_in():
    seen = []

    def hash_files(*patterns: str) -> str:
        seen.append(patterns)
        return "abc123"

    key = expand(
        "pip-${{ matrix.python }}-${{ hashFiles('**/pyproject.toml', 'it''s') }}",
        CONTEXT,
        {"hashFiles": hash_files},
    )
    assert "pip-3.12-abc123" == key
    assert [("**/pyproject.toml", "it's")] == seen
    with pytest.raises(ExpressionError, match="did you mean 'hashFiles'"):
        expand("${{ hashfiles('x') }}", CONTEXT, {"hashFiles": hash_files})
    with pytest.raises(ExpressionError, match="not an expression"):
        expand("${{ hashFiles(x) }}", CONTEXT, {"hashFiles": hash_files})


def test_find_expressions_reports_offsets_in_order():
    found = find_expressions("a ${{ matrix.x }} b ${{ env.Y }}")
    assert [(2, "matrix", "x"), (20, "env", "Y")] == [(e.start, e.context, e.name) for e in found]


def test_problems_name_what_is_available():
    (only,) = problems("${{ env.X }}", {})
    assert (0, "uses ${{ env.X }}, but no expression can be used here") == only
    (only,) = problems("${{ secret.X }}", {"matrix": [], "env": []})
    assert (
        0,
        "uses ${{ secret.X }}, but there is no context 'secret' (contexts here: env, matrix)",
    ) == only
    (only,) = problems("${{ matrix.x }}", {"matrix": [], "env": []})
    assert (0, "uses ${{ matrix.x }}, but the step has no 'matrix'") == only


def test_step_context_is_what_the_pipeline_gives_the_step():
    from sauci.core.expressions import step_context
    from sauci.core.pipeline import parse_pipeline

    pipeline = parse_pipeline(
        "env: {A: top, B: top}\nsteps:\n  t:\n    matrix: {py: ['3.12']}\n"
        "    env: {B: step}\n    run: 'true'\n"
    )
    context = step_context(pipeline, pipeline.steps[0])
    assert {"matrix": {"py": "3.12"}, "env": {"A": "top", "B": "step", "py": "3.12"}} == context
    assert "pip-3.12-step" == expand("pip-${{ matrix.py }}-${{ env.B }}", context)
