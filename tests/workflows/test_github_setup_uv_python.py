"""astral-sh/setup-uv's ``python-version`` is checked as setup-python's is: a
Python the machine lacks skips the matrix entry with the reason, or fails the
job when the operator says ``[sauci.setup-python] missing = "fail"``; the step
itself fails then, before anything uses the interpreter."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sauci.workflows.github import Settings, plan_github

# A uv that finds a Python 3 (the machine's) and nothing else.
FAKE_UV = """\
#!/bin/sh
for last; do :; done
if [ "$1" = python ] && [ "$2" = find ]; then
  case "$last" in 3*) command -v python3; exit 0;; *) exit 1;; esac
fi
echo "uv 0.0.0 (fake)"
"""

WORKFLOW = """\
on: push
jobs:
  test:
    runs-on: ubuntu-latest
    strategy:
      fail-fast: false  # the "3" entry runs whatever "2.5" does
      matrix:
        python: ["2.5", "3"]
    steps:
      - uses: astral-sh/setup-uv@v6
        with:
          python-version: ${{ matrix.python }}
      - run: echo "reached-$UV_PYTHON"
"""


def _bin(tmp_path: Path) -> str:
    folder = tmp_path / "bin"
    folder.mkdir()
    (folder / "uv").write_text(FAKE_UV)
    (folder / "uv").chmod(0o755)
    return f"{folder}{os.pathsep}{os.environ['PATH']}"


def test_a_missing_python_skips_the_entry_unless_the_operator_says_fail(tmp_path: Path) -> None:
    path = _bin(tmp_path)
    missing, present = plan_github(WORKFLOW, Settings(file="ci.yml", path=path)).entries
    assert "skipped: python 2.5 is not installed on this machine" == missing.skip
    assert present.skip is None
    made = plan_github(WORKFLOW, Settings(file="ci.yml", path=path, missing_python="fail"))
    assert [None, None] == [e.skip for e in made.entries]
    assert "python 2.5 is not on this machine; the job fails (missing = fail)" in made.text()


def test_missing_fail_fails_the_setup_uv_step_under_sauci_run(tmp_path: Path) -> None:
    config = tmp_path / "sauci.toml"
    config.write_text('[sauci.setup-python]\nmissing = "fail"\n')
    repo = tmp_path / "repo"
    (repo / ".github" / "workflows").mkdir(parents=True)
    (repo / ".github" / "workflows" / "ci.yml").write_text(WORKFLOW)
    git = ["git", "-c", "user.name=T", "-c", "user.email=t@x", "-C", str(repo)]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "m"], check=True)
    env = {**os.environ, "SAUCI_CONFIG": str(config), "SAUCI_DATA_DIR": str(tmp_path / "d")}
    env["PATH"] = _bin(tmp_path)
    env.pop("SAUCI_STORE", None)
    done = subprocess.run(
        [sys.executable, "-m", "sauci", "run", str(repo), "--color", "never"],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    out = done.stdout + done.stderr
    assert 1 == done.returncode, out
    assert "sauci: no interpreter for python-version '2.5'" in out, out
    assert "reached-2.5" not in out, out
    assert "reached-3" in out, out  # the entry whose Python is there runs
