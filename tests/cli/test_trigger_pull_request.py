"""``sauci trigger --event pull_request``: a branch queued as a pull request into
a base branch, recorded on the build; bad names refused without a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sauci.core.config import Settings
from sauci.core.pull_requests import PullRequest, pull_request_of
from sauci.storage import open_store

GIT = ["git", "-c", "user.name=T", "-c", "user.email=t@example.com"]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SAUCI_")}
    return {**clean, "SAUCI_DATA_DIR": str(tmp_path / "data"), "NO_COLOR": "1"}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    path.mkdir()
    (path / ".sauci.yml").write_text("steps:\n  - name: t\n    run: 'true'\n")
    for args in (["init", "-q", "-b", "main"], ["add", "."], ["commit", "-q", "-m", "first"],
                 ["branch", "feature"]):  # fmt: skip
        subprocess.run([*GIT, *args], cwd=path, check=True, capture_output=True)
    return path


def sauci(env: dict[str, str], *args: str) -> tuple[int, str]:
    done = subprocess.run(
        [sys.executable, "-m", "sauci", *args], env=env, capture_output=True, text=True, timeout=120
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, done.stdout + done.stderr


def test_a_branch_is_queued_as_a_pull_request_into_its_base(env, repo, tmp_path):
    code, out = sauci(
        env, "trigger", str(repo), "--event", "pull_request", "--ref", "feature",
        "--base", "main", "--number", "4", "--param", "level=full",
    )  # fmt: skip
    assert (0, True) == (code, "queued build #1" in out), out
    store = open_store(Settings(data_dir=tmp_path / "data").store_url)
    build = store.get_build(1)
    assert ("pull_request", "refs/heads/feature") == (build.event, build.ref)
    assert PullRequest(number=4, base="main", head="feature") == pull_request_of(build.params)
    assert "full" == build.params["level"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--ref", "feature"], "needs --base"),
        (["--base", "main"], "needs --ref"),
        (["--ref", "feature", "--base=-oops"], "--base: '-oops' is not a branch name"),
        (["--ref", "feature", "--base", "a..b"], "is not a branch name"),
    ],
)
def test_a_pull_request_needs_a_head_and_a_valid_base(env, repo, args, message):
    code, out = sauci(env, "trigger", str(repo), "--event", "pull_request", *args)
    assert (2, True) == (code, message in out), out


RUN_WORKFLOW = """\
on:
  pull_request:
    branches: [main]
jobs:
  t:
    runs-on: ubuntu-latest
    steps:
      - run: echo "event=${{ github.event_name }} base=${{ github.base_ref }} head=$HEAD_REF pr=$SAUCI_PR_BASE"
        env:
          HEAD_REF: ${{ github.head_ref }}
"""


def test_sauci_run_runs_the_checkout_as_a_pull_request(env, tmp_path):
    path = tmp_path / "wf"
    (path / ".github" / "workflows").mkdir(parents=True)
    (path / ".github" / "workflows" / "ci.yml").write_text(RUN_WORKFLOW)
    for args in (["init", "-q", "-b", "main"], ["add", "."], ["commit", "-q", "-m", "first"],
                 ["checkout", "-q", "-b", "feat/x"]):  # fmt: skip
        subprocess.run([*GIT, *args], cwd=path, check=True, capture_output=True)
    run = [sys.executable, "-m", "sauci", "run", "--event", "pull_request"]
    done = subprocess.run([*run, "--base", "main"], cwd=path, env=env, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert 0 == done.returncode, done.stdout + done.stderr
    assert "event=pull_request base=main head=feat/x pr=main" in done.stdout
    other = subprocess.run([*run, "--base", "develop"], cwd=path, env=env, capture_output=True,
                           text=True, timeout=120)  # fmt: skip
    assert "on.pull_request.branches: 'develop' matches none" in other.stdout + other.stderr
    assert "event=pull_request" not in other.stdout
    bad = subprocess.run(run, cwd=path, env=env, capture_output=True, text=True, timeout=120)
    assert (2, True) == (bad.returncode, "needs --base BRANCH" in bad.stderr), bad.stderr
