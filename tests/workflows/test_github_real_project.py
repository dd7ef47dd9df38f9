"""A real project's test workflow of the usual shape: planned offline, run under serve against PyPI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sauci.workflows.github import Settings, plan_github

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import real_projects as rp  # noqa: E402


def test_the_benchmark_workflow_is_one_job_with_cache_junit_and_artifacts(tmp_path):
    text = rp.github_workflow(rp.PROJECTS["itsdangerous"], sys.executable)
    plan = plan_github(text, Settings(workspace=tmp_path, file="tests.yml"))
    version = "{}.{}".format(*sys.version_info[:2])
    (step,) = plan.pipeline.steps
    assert f"Python {version}" == step.name
    assert ("reports/junit.xml",) == step.junit == step.artifacts[:1]
    assert step.cache is not None and ("~/.cache/pip",) == step.cache.paths
    assert step.cache.key.startswith(f"pip-Linux-{version}-${{{{ hashFiles(")
    assert "pytest freezegun ." in step.script()


@pytest.mark.slow
def test_six_under_a_real_serve_counts_as_plain_pytest(tmp_path):
    probe = subprocess.run(
        [
            *(sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary"),
            *(":all:", "six==1.16.0", "-d", str(tmp_path)),
        ],
        capture_output=True,
        timeout=120,
    )
    if probe.returncode:
        pytest.skip("the package index is unreachable")
    done = subprocess.run(
        [
            *(sys.executable, str(ROOT / "benchmarks/real_projects.py")),
            *("--projects", "six", "--workflow", "github"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert 0 == done.returncode, done.stdout + done.stderr
    (row,) = [line.split() for line in done.stdout.splitlines() if line.startswith("six ")]
    assert "passed" == row[1]
    assert row[2] == row[3]  # sauci's counts are plain pytest's
    passed, failed, _ = map(int, row[2].split("/"))
    assert passed > 100 and 0 == failed
