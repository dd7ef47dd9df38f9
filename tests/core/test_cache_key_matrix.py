"""A cache key's ${{ matrix.NAME }} must name one of the step's matrix
variables: a misspelt or missing one is a problem at its file:line:col, as
for every other field that takes expressions."""

from __future__ import annotations

import pytest

from sauci.core.pipeline import parse_pipeline, validate_pipeline


def key_pipeline(key: str, matrix: str = '    matrix: {python: ["3.11", "3.12"]}\n') -> str:
    return (
        "steps:\n  test:\n"
        + matrix
        + f"    run: echo hi\n    cache:\n      paths: [.venv]\n      key: {key}\n"
    )


def test_a_misspelt_matrix_name_is_a_problem_at_its_column():
    (problem,) = validate_pipeline(key_pipeline('"v-${{ matrix.pyhton }}"'), ".sauci.yml")
    assert (7, 15) == (problem.line, problem.column)
    assert "no variable 'pyhton'; did you mean 'python'?" in problem.message


def test_matrix_in_the_key_of_a_step_without_a_matrix_is_a_problem():
    (problem,) = validate_pipeline(key_pipeline("v-${{ matrix.python }}", matrix=""), "f.yml")
    assert "the step has no matrix" in problem.message
    assert (6, 14) == (problem.line, problem.column)


@pytest.mark.parametrize(
    "key",
    [
        "v-${{ matrix.python }}",
        "\"v-${{ matrix.python }}-${{ hashFiles('a', 'b') }}\"",
        "v-plain",
    ],
)
def test_keys_that_name_the_matrix_are_fine(key):
    assert [] == validate_pipeline(key_pipeline(key), ".sauci.yml")
    steps = parse_pipeline(key_pipeline(key)).steps
    assert 2 == len(steps) and all(s.cache is not None for s in steps)
