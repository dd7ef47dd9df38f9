"""GitHub's matrix rules: product order, exclude, include merged or appended."""

from __future__ import annotations

import pytest

from sauci.workflows.github._matrix import MatrixError, expand_matrix, matrix_text


def test_the_documented_include_example_gives_the_documented_combinations() -> None:
    # https://docs.github.com/en/actions/using-jobs/using-a-matrix-for-your-jobs
    matrix = {
        "fruit": ["apple", "pear"],
        "animal": ["cat", "dog"],
        "include": [
            {"color": "green"},
            {"color": "pink", "animal": "cat"},
            {"fruit": "apple", "shape": "circle"},
            {"fruit": "banana"},
            {"fruit": "banana", "animal": "cat"},
        ],
    }
    expected = [
        {"fruit": "apple", "animal": "cat", "color": "pink", "shape": "circle"},
        {"fruit": "apple", "animal": "dog", "color": "green", "shape": "circle"},
        {"fruit": "pear", "animal": "cat", "color": "pink"},
        {"fruit": "pear", "animal": "dog", "color": "green"},
        {"fruit": "banana"},
        {"fruit": "banana", "animal": "cat"},
    ]
    assert expected == expand_matrix(matrix)


def test_exclude_removes_every_combination_holding_all_its_values() -> None:
    matrix = {
        "os": ["macos", "windows", "ubuntu"],
        "version": [12, 14, 16],
        "environment": ["staging", "production"],
        "exclude": [
            {"os": "macos", "version": 12, "environment": "production"},
            {"os": "windows", "version": 16},
        ],
    }
    combos = expand_matrix(matrix)
    assert 18 - 1 - 2 == len(combos)
    assert {"os": "windows", "version": 16, "environment": "staging"} not in combos
    assert {"os": "macos", "version": 12, "environment": "staging"} in combos


def test_include_never_overwrites_an_original_value_so_it_becomes_an_entry() -> None:
    matrix = {"python": ["3.11", "3.12"], "include": [{"python": "3.13", "experimental": True}]}
    assert [
        {"python": "3.11"},
        {"python": "3.12"},
        {"python": "3.13", "experimental": True},
    ] == expand_matrix(matrix)


def test_a_matrix_of_only_include_entries_is_that_list() -> None:
    matrix = {"include": [{"python": "3.12", "tox": "py312"}, {"python": "3.13", "tox": "lint"}]}
    assert [{"python": "3.12", "tox": "py312"}, {"python": "3.13", "tox": "lint"}] == expand_matrix(
        matrix
    )


def test_dict_valued_axes_match_exclude_on_the_keys_given() -> None:
    matrix = {
        "env": [{"py": "3.11", "name": "a"}, {"py": "3.12", "name": "b"}],
        "exclude": [{"env": {"py": "3.12"}}],
    }
    assert [{"env": {"py": "3.11", "name": "a"}}] == expand_matrix(matrix)


@pytest.mark.parametrize(
    ("matrix", "message"),
    [
        ({"python": "3.12"}, "must be a list"),
        ({"python": []}, "empty list"),
        ({"a": list(range(20)), "b": list(range(20))}, "more than 256"),
        ({"python": ["3.12"], "include": "x"}, "'include' must be a list"),
    ],
)
def test_a_wrong_matrix_is_an_error_saying_what_is_wrong(matrix: dict, message: str) -> None:
    with pytest.raises(MatrixError, match=message):
        expand_matrix(matrix)


def test_values_are_shown_as_github_shows_them() -> None:
    assert ["3.1", "3", "true", "", '{"a": 1}'] == [
        matrix_text(v) for v in (3.10, 3.0, True, None, {"a": 1})
    ]
