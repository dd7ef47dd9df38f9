"""The top-level ``runs_on`` key of .sauci.yml: parsed, checked, dumped."""

from __future__ import annotations

import pytest

from sauci.core.pipeline import dump_pipeline, parse_pipeline, validate_pipeline


def test_a_string_is_one_label():
    assert ("linux",) == parse_pipeline("runs_on: linux\nsteps:\n  a: {run: 'true'}\n").runs_on


def test_a_list_is_sorted_and_deduplicated():
    text = "runs_on: [linux, docker, linux]\nsteps:\n  a: {run: 'true'}\n"
    assert ("docker", "linux") == parse_pipeline(text).runs_on


def test_labels_are_case_insensitive_and_kept_in_lower_case():
    text = "runs_on: [Linux, GPU, linux]\nsteps:\n  a: {run: 'true'}\n"
    assert ("gpu", "linux") == parse_pipeline(text).runs_on


def test_worker_labels_are_lower_cased_the_same_way_wherever_they_come_from():
    from sauci.core.config import Settings, load_settings, parse_labels

    assert ("docker", "linux") == parse_labels("Linux, DOCKER,linux")
    assert ("docker", "linux") == Settings(labels=("Linux", "Docker")).labels
    assert ("linux",) == load_settings(environ={"SAUCI_LABELS": "LINUX"}).labels


def test_no_runs_on_means_any_worker():
    assert () == parse_pipeline("steps:\n  a: {run: 'true'}\n").runs_on


@pytest.mark.parametrize(
    ("value", "where", "message"),
    [
        ("'has space'", (1, 10), "not 1 to 64 letters"),
        ("{a: 1}", (1, 10), "expected a worker label"),
        ("[a, b, c, d, e, f, g, h, i]", (1, 10), "no worker can have more than 8"),
        ("[linux, 'x/y']", (1, 18), "'x/y' is not"),
    ],
)
def test_bad_values_are_located(value, where, message):
    problems = validate_pipeline(f"runs_on: {value}\nsteps:\n  a: {{run: 'true'}}\n")
    assert 1 == len(problems)
    assert where == (problems[0].line, problems[0].column)
    assert message in problems[0].message


def test_dump_round_trips():
    pipeline = parse_pipeline("runs_on: [gpu, linux]\nsteps:\n  a: {run: 'true'}\n")
    assert pipeline == parse_pipeline(dump_pipeline(pipeline))
    assert "runs_on:" in dump_pipeline(pipeline)
