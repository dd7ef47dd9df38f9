"""actions/checkout's ``fetch-depth`` under `sauci run`: ``fetch-depth: 0``
(what setuptools-scm and ``git describe`` need) gives the whole history and
the tags, in every matrix entry's workspace; a positive depth (GitHub's
default, 1) keeps that full history too, and the step says so."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

GIT = ["git", "-c", "user.name=Tester", "-c", "user.email=t@example.com"]

WORKFLOW = """\
on: push
jobs:
  version:
    runs-on: ubuntu-latest
    strategy:
      matrix:
        part: [a, b]
    steps:
      - uses: actions/checkout@v4
        with:
          fetch-depth: 0
      - run: echo "described=$(git describe --tags) count=$(git rev-list --count HEAD)"
  default:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - run: echo "shallow=$(git rev-parse --is-shallow-repository) count=$(git rev-list --count HEAD)"
"""


def test_fetch_depth_zero_gives_history_and_tags(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("SAUCI_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("SAUCI_STORE", raising=False)
    repo = tmp_path / "repo"
    (repo / ".github/workflows").mkdir(parents=True)
    (repo / "README").write_text("one\n")
    subprocess.run([*GIT, "init", "-q", "-b", "main"], cwd=repo, check=True)
    subprocess.run([*GIT, "add", "README"], cwd=repo, check=True)
    subprocess.run([*GIT, "commit", "-q", "-m", "one"], cwd=repo, check=True)
    subprocess.run([*GIT, "tag", "-a", "v1.2.0", "-m", "v1.2.0"], cwd=repo, check=True)
    (repo / ".github/workflows/ci.yml").write_text(WORKFLOW)
    subprocess.run([*GIT, "add", "."], cwd=repo, check=True)
    subprocess.run([*GIT, "commit", "-q", "-m", "two"], cwd=repo, check=True)
    sha = subprocess.run(
        ["git", "rev-parse", "--short=7", "HEAD"], cwd=repo, capture_output=True, text=True
    ).stdout.strip()
    result = subprocess.run(
        [sys.executable, "-m", "sauci", "run", str(repo), "--color", "never"],
        capture_output=True, text=True, timeout=120, env=dict(os.environ),
    )  # fmt: skip
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    # Both matrix entries (each its own workspace copy) see the tag and the history.
    assert out.count(f"described=v1.2.0-1-g{sha}") == 2, out
    assert out.count("count=2") == 3, out
    assert "shallow=false" in out, out
    assert "fetch-depth 1 (GitHub's default): the workspace keeps the full history" in out, out
