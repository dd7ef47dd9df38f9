"""A pushed pipeline cannot declare more than the server's per-build maximum:
`sauci run` (the runner's own path) refuses it at the key, before any step."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

GIT = ["git", "-c", "user.name=Tester", "-c", "user.email=t@example.com"]

GREEDY = """\
steps:
  mine:
    run: echo never-ran
    resources:
      cpus: 4096
"""


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("SAUCI_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("SAUCI_STORE", raising=False)


def test_a_pipeline_declaring_more_than_the_maximum_is_refused_at_its_key(tmp_path: Path):
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / ".sauci.yml").write_text(GREEDY)
    subprocess.run([*GIT, "init", "-q", "-b", "main"], cwd=repo, check=True)
    subprocess.run([*GIT, "add", "."], cwd=repo, check=True)
    subprocess.run([*GIT, "commit", "-q", "-m", "first"], cwd=repo, check=True)
    run = subprocess.run(
        [sys.executable, "-m", "sauci", "run", str(repo), "--color", "never"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "SAUCI_MAX_BUILD_CPUS": "3"},
    )
    assert 2 == run.returncode, run.stderr
    assert (
        ".sauci.yml:5:7: 'resources' in step 'mine': 4096 CPUs is more than this "
        "server's per-build maximum of 3"
    ) in run.stderr
    assert "never-ran" not in run.stdout + run.stderr
    assert "Traceback" not in run.stderr
