"""`sauci demo` reports the same test counts every time: its matrix entries
each collect their own JUnit reports (sauci.core.entry_workspaces)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def sauci(*args: str, data: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sauci", *args, "--color", "never"],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "SAUCI_DATA_DIR": str(data), "SAUCI_STORE": ""},
    )


def test_demo_counts_are_exact_and_stable(tmp_path: Path):
    data = tmp_path / "data"
    for build in (1, 2, 3):
        ran = sauci("demo", "--dir", str(tmp_path / f"demo{build}"), data=data)
        assert 0 == ran.returncode, ran.stdout + ran.stderr
        shown = sauci("show", str(build), data=data)
        assert 0 == shown.returncode, shown.stdout + shown.stderr
        # fast: test_add, test_mul; thorough: the same and test_big.
        assert "tests: 5 run, 0 failed" in shown.stdout, shown.stdout
