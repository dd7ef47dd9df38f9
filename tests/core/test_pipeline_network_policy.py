"""The `network` key of a pipeline and a step, held to the server's network policy:
a pipeline can turn the network off, never on when the server turned it off."""

from __future__ import annotations

import pytest

from sauci.core.config import load_settings
from sauci.core.pipeline import load_pipeline, parse_pipeline, validate_pipeline

PUSHED_WIDENING = """\
steps:
  - name: install
    network: true
    run: pip install requests
"""


def test_a_pushed_network_true_against_a_no_network_server_is_a_located_problem():
    """Hostile: a pushed pipeline asks for the network the operator turned off."""
    (problem,) = validate_pipeline(PUSHED_WIDENING, ".sauci.yml", network=False)
    assert (".sauci.yml", 3, 14) == (problem.file, problem.line, problem.column)
    assert "network is off on this server" in problem.message
    assert "--no-network" in problem.message and "SAUCI_NETWORK" in problem.message


def test_a_top_level_network_true_is_refused_too():
    text = "network: true\nsteps:\n  - name: a\n    run: 'true'\n"
    (problem,) = validate_pipeline(text, ".sauci.yml", network=False)
    assert (1, 10) == (problem.line, problem.column)


def test_the_same_file_is_valid_where_the_server_allows_the_network():
    assert [] == validate_pipeline(PUSHED_WIDENING, ".sauci.yml")
    (step,) = parse_pipeline(PUSHED_WIDENING).steps
    assert step.network is True


def test_network_false_narrows_on_any_server():
    text = "network: false\nsteps:\n  - name: a\n    run: 'true'\n  - name: b\n    network: true\n    run: 'true'\n"
    a, b = parse_pipeline(text).steps
    assert (False, True) == (a.network, b.network)
    # Off on the server: the pipeline's `false` is fine, the step's `true` is not.
    (problem,) = validate_pipeline(text, ".sauci.yml", network=False)
    assert 6 == problem.line


def test_steps_that_do_not_say_leave_it_to_the_sandbox():
    (step,) = parse_pipeline("steps:\n  - name: a\n    run: 'true'\n").steps
    assert step.network is None


def test_network_must_be_a_boolean_at_the_top_level():
    (problem,) = validate_pipeline("network: maybe\nsteps:\n  - name: a\n    run: 'true'\n")
    assert "expected true or false" in problem.message


def test_load_pipeline_holds_a_file_to_the_policy(tmp_path):
    (tmp_path / ".sauci.yml").write_text(PUSHED_WIDENING)
    with pytest.raises(ValueError, match="network is off on this server"):
        load_pipeline(tmp_path, network=False)


@pytest.mark.parametrize(
    ("environ", "overrides", "expected"),
    [
        ({}, {}, True),
        ({"SAUCI_NETWORK": "false"}, {}, False),
        ({"SAUCI_NETWORK": "0"}, {"network": None}, False),
        ({}, {"network": False}, False),
    ],
)
def test_the_network_setting_comes_from_the_environment_and_flags(
    tmp_path, environ, overrides, expected
):
    assert expected == load_settings(overrides, cwd=tmp_path, environ=environ).network


def test_the_network_setting_comes_from_sauci_toml(tmp_path):
    (tmp_path / "sauci.toml").write_text("[sauci]\nnetwork = false\n")
    assert load_settings(cwd=tmp_path, environ={}).network is False
