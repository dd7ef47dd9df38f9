"""A real project's test workflow of the usual shape: planned offline, run under serve against PyPI."""

from __future__ import annotations

import os
import shutil
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
    assert ("reports/junit.xml",) == step.junit[:1] == step.artifacts[:1]
    assert step.cache is not None and ("~/.cache/pip",) == step.cache.paths
    assert step.cache.key.startswith(f"pip-Linux-{version}-${{{{ hashFiles(")
    assert "pytest freezegun ." in step.script()


@pytest.mark.slow
def test_six_unchanged_workflow_counts_as_plain_pytest(tmp_path, monkeypatch):
    """six 1.16.0 from the package index with the usual workflow: `sauci run` passes, and its
    JUnit counts are plain pytest's (benchmarks/real_projects.py --workflow github does the
    same under `sauci serve`, with timings)."""
    # dbm.ndbm is missing from some interpreters (pyenv's builds without gdbm/ndbm).
    project = rp.Project(
        name="six",
        version="1.16.0",
        tests=("test_six.py",),
        deselect=("test_six.py::test_move_items[dbm_ndbm]",),
    )
    try:
        source = rp.download(project, tmp_path / "sdist")
    except Exception:
        pytest.skip("the package index is unreachable")
    # Plain pytest as the workflow's venv has it: no plugin of this environment's
    # (pytest-django would look for the settings this test session set).
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    plain = subprocess.run(
        [sys.executable, *rp.pytest_args(project, str(tmp_path / "plain.xml"))],
        cwd=source,
        capture_output=True,
        timeout=300,
        env=env,
    )
    assert 0 == plain.returncode, plain.stdout
    expected = rp.junit_counts((tmp_path / "plain.xml").read_text())
    repo = tmp_path / "repo"
    shutil.copytree(source, repo)
    (repo / ".github" / "workflows").mkdir(parents=True)
    (repo / ".github" / "workflows" / "tests.yml").write_text(
        rp.github_workflow(project, sys.executable)
    )
    git = ["git", "-c", "user.name=T", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q", "-b", "main"], cwd=repo, check=True)
    subprocess.run([*git, "add", "-A", "-f", "."], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "six"], cwd=repo, check=True)
    monkeypatch.setenv("SAUCI_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("SAUCI_STORE", raising=False)
    done = subprocess.run(
        [sys.executable, "-m", "sauci", "run", "--color", "never", str(repo)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert 0 == done.returncode, done.stdout + done.stderr
    from sauci.storage import open_store

    store = open_store(f"sqlite:///{tmp_path / 'data' / 'sauci.db'}")
    try:
        (build,) = store.list_builds(limit=5)
        statuses = [t.status for _, t in store.list_test_results(build.id)]
    finally:
        store.close()
    assert expected == rp.store_counts(statuses)
    assert expected.passed > 100
