"""The Prometheus alert rules shipped in docs/grafana: valid, and each one unit
tested with `promtool test rules` (firing in its case, quiet in a healthy one)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

GRAFANA = Path(__file__).resolve().parents[2] / "docs" / "grafana"


@pytest.fixture
def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        message = "promtool is not installed (apt-get install --no-install-recommends prometheus)"
        if os.environ.get("SAUCI_REQUIRE_PROMTOOL"):
            pytest.fail(f"{message}, and SAUCI_REQUIRE_PROMTOOL is set")
        pytest.skip(message)
    return found


def test_every_alert_has_a_unit_test():
    rules = yaml.safe_load((GRAFANA / "alerts.yml").read_text())
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    tests = yaml.safe_load((GRAFANA / "alerts_test.yml").read_text())
    tested = {
        t["alertname"]
        for case in tests["tests"]
        for t in case.get("alert_rule_test", [])
        if t.get("exp_alerts")  # a case where it fires, not only quiet ones
    }
    assert alerts == tested, f"alerts without a firing test: {sorted(alerts - tested)}"


def test_the_rules_are_valid(promtool):
    done = subprocess.run(
        [promtool, "check", "rules", "alerts.yml"], cwd=GRAFANA, capture_output=True, text=True
    )
    assert 0 == done.returncode, done.stdout + done.stderr


def test_the_rules_pass_their_unit_tests(promtool):
    done = subprocess.run(
        [promtool, "test", "rules", "alerts_test.yml"],
        cwd=GRAFANA,
        capture_output=True,
        text=True,
    )
    assert 0 == done.returncode, done.stdout + done.stderr
