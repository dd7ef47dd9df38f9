"""A misspelt ``${{ ... }}`` stops `sauci validate` and `sauci run` with file:line:column."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

GIT = ["git", "-c", "user.name=Tester", "-c", "user.email=t@example.com"]

PIPELINE = """\
steps:
  test:
    matrix: {python: ['3.11', '3.12']}
    run: echo ${{ matrix.python }}
    junit: reports/${{ matrix.pyhton }}.xml
"""


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("SAUCI_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("SAUCI_STORE", raising=False)


def sauci(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sauci", *args, "--color", "never"],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ),
    )


def test_validate_names_the_line_and_column(tmp_path: Path):
    path = tmp_path / ".sauci.yml"
    path.write_text(PIPELINE)
    result = sauci("validate", str(path))
    assert 2 == result.returncode, result.stdout + result.stderr
    assert (
        f"{path}:5:20: 'junit' in step 'test' uses ${{{{ matrix.pyhton }}}}, but the matrix "
        "has no variable 'pyhton'; did you mean 'python'?"
    ) in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_run_refuses_it_before_any_step(tmp_path: Path):
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / ".sauci.yml").write_text(PIPELINE)
    subprocess.run([*GIT, "init", "-q", "-b", "main"], cwd=repo, check=True)
    subprocess.run([*GIT, "add", "."], cwd=repo, check=True)
    subprocess.run([*GIT, "commit", "-q", "-m", "m"], cwd=repo, check=True)
    result = sauci("run", str(repo))
    assert 2 == result.returncode, result.stdout + result.stderr
    out = result.stdout + result.stderr
    assert ".sauci.yml:5:20: 'junit' in step 'test' uses ${{ matrix.pyhton }}" in out
    assert "Traceback" not in out
