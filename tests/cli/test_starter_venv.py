"""`sauci init` then `sauci run` on a tiny real Python project: the starter
pipeline makes its own venv in the workspace, installs there and runs pytest."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sauci.cli._starter import python_install

GIT = ["git", "-c", "user.name=Tester", "-c", "user.email=t@example.com"]

PYPROJECT = """\
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "sauci-starter-probe"
version = "0.1"

[project.optional-dependencies]
test = ["pytest"]

[tool.setuptools]
py-modules = ["tiny"]
"""


def packages_reachable(tmp_path: Path) -> bool:
    """Whether pip can get what the project's install needs (PyPI, or a local index)."""
    try:
        probe = ["download", "--no-deps", "-q", "-d", str(tmp_path / "probe")]
        got = subprocess.run(
            [sys.executable, "-m", "pip", *probe, "setuptools", "pytest"],
            capture_output=True,
            timeout=120,
        )
    except subprocess.TimeoutExpired:
        return False
    return got.returncode == 0


@pytest.mark.slow
def test_init_then_run_installs_into_a_venv_of_the_workspace(tmp_path):
    if not packages_reachable(tmp_path):
        pytest.skip("the package index is not reachable: the install needs setuptools and pytest")
    repo = tmp_path / "tiny"
    repo.mkdir()
    (repo / "pyproject.toml").write_text(PYPROJECT)
    (repo / "tiny.py").write_text("def add(a, b):\n    return a + b\n")
    (repo / "test_tiny.py").write_text(
        "from tiny import add\n\n\ndef test_add():\n    assert add(1, 2) == 3\n\n\n"
        "def test_more():\n    assert add(2, 2) == 4\n"
    )
    subprocess.run([*GIT, "init", "-q", "-b", "main"], cwd=repo, check=True)
    env = {**os.environ, "SAUCI_DATA_DIR": str(tmp_path / "data")}
    env.pop("SAUCI_STORE", None)
    env.pop("VIRTUAL_ENV", None)

    def sauci(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "sauci", *args, "--color", "never"],
            cwd=repo,
            capture_output=True,
            text=True,
            timeout=600,
            env=env,
        )

    assert 0 == sauci("init").returncode
    ran = sauci("run", "--quiet")
    assert 0 == ran.returncode, ran.stdout + ran.stderr
    shown = sauci("show", "1")
    assert "tests: 2 run, 0 failed" in shown.stdout, shown.stdout
    # Nothing was made in the user's tree, nothing installed in this environment.
    assert ["pyproject.toml", "test_tiny.py", "tiny.py"] == sorted(
        p.name for p in repo.iterdir() if p.name not in (".git", ".sauci.yml")
    )
    installed = "import importlib.metadata as m; m.version('sauci-starter-probe')"
    assert 0 != subprocess.run([sys.executable, "-c", installed], cwd="/").returncode


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        (
            {
                "pyproject.toml": "[project]\nname='x'\n[project.optional-dependencies]\ntest=['a']\n"
            },
            "-e '.[test]' pytest",
        ),
        (
            {"pyproject.toml": "[project]\nname='x'\n[project.optional-dependencies]\ntests=[]\n"},
            "-e '.[tests]' pytest",
        ),
        (
            {"setup.py": "", "requirements-dev.txt": "pytest\n"},
            "-e . -r requirements-dev.txt pytest",
        ),
        ({"pyproject.toml": "not toml ["}, "-e . pytest"),
        ({"pyproject.toml": "[project]\nname='x'\n"}, "-e . pytest"),
    ],
)
def test_the_install_line_is_guessed_from_the_project(tmp_path, files, expected):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    assert expected == python_install(tmp_path)[0]
