"""actions/cache's ``cache-hit`` output under `sauci run`: "false" on a miss,
"true" when the exact key was restored (the install step is skipped by the
usual ``if: steps.cache.outputs.cache-hit != 'true'``), and "false" again when
only a restore key matched, as GitHub documents it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

GIT = ["git", "-c", "user.name=Tester", "-c", "user.email=t@example.com"]

WORKFLOW = """\
on: push
jobs:
  deps:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - id: cache
        uses: actions/cache@v4
        with:
          path: deps
          key: deps-${{ hashFiles('lock.txt') }}
          restore-keys: deps-
      - if: steps.cache.outputs.cache-hit != 'true'
        run: mkdir -p deps && cp lock.txt deps/ && echo "INSTALL""ED"
      - run: echo "hit=[${{ steps.cache.outputs.cache-hit }}] env=[$SAUCI_CACHE_HIT]"
"""


def _commit(repo: Path, lock: str) -> None:
    (repo / "lock.txt").write_text(lock)
    subprocess.run([*GIT, "add", "."], cwd=repo, check=True)
    subprocess.run([*GIT, "commit", "-q", "-m", lock], cwd=repo, check=True)


def _run(repo: Path) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "sauci", "run", str(repo), "--color", "never"],
        capture_output=True, text=True, timeout=120, env=dict(os.environ),
    )  # fmt: skip
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    return out


def test_cache_hit_is_true_only_for_the_exact_key(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("SAUCI_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("SAUCI_STORE", raising=False)
    repo = tmp_path / "repo"
    (repo / ".github/workflows").mkdir(parents=True)
    (repo / ".github/workflows/ci.yml").write_text(WORKFLOW)
    subprocess.run([*GIT, "init", "-q", "-b", "main"], cwd=repo, check=True)
    _commit(repo, "one")

    first = _run(repo)  # a miss: the install runs
    assert "hit=[false] env=[false]" in first and "INSTALLED" in first, first
    second = _run(repo)  # the exact key: the install is skipped
    assert "hit=[true] env=[true]" in second, second
    assert "INSTALLED" not in second, second
    _commit(repo, "two")
    third = _run(repo)  # only the restore key matched: not a hit, the install runs
    assert "hit=[false]" in third and "INSTALLED" in third, third
