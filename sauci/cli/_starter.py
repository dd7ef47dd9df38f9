"""``sauci init``: a commented starter pipeline guessed from the repository.

A Python project's pipeline makes its own virtual environment in the build's
workspace and installs there: never into the user's environment (which PEP
668 may refuse anyway).
"""

from __future__ import annotations

import shlex
import tomllib
from pathlib import Path

__all__ = ["python_install", "starter_pipeline"]

_HEADER = """\
# SauCI pipeline: https://sauci.readthedocs.io/ (reference: docs/pipeline.md)
# Each step runs with `bash -eo pipefail`; steps run in file order unless they
# say what they `needs`. Check this file with: sauci validate
"""

_PYTHON = """\
# The build makes its own virtual environment, .venv in its workspace: nothing
# is installed into yours.
steps:
  - name: install
    run: |
      python3 -m venv .venv
      .venv/bin/python -m pip install {install}
    timeout: 10m
  - name: test
    run: .venv/bin/python -m pytest -q --junitxml=reports/junit.xml
    junit: reports/*.xml          # parsed into test results
    # retries: 1                  # retry a flaky step
    # limits: {{memory: 2GiB}}    # honoured by sandboxes that can
"""

# Extras that usually hold the test dependencies, in the order tried.
_TEST_EXTRAS = ("test", "tests", "testing", "dev")
_REQUIREMENTS = (
    "requirements-test.txt",
    "requirements-tests.txt",
    "test-requirements.txt",
    "requirements-dev.txt",
    "requirements/test.txt",
    "requirements/tests.txt",
    "requirements/dev.txt",
)

_NODE = """\
steps:
  - name: install
    run: {install}
    timeout: 10m
  - name: test
    run: npm test
"""

_MAKE = """\
steps:
  - name: test
    run: make test
"""

_GENERIC = """\
steps:
  - name: hello
    run: echo "replace me with your build and test commands"
"""


def starter_pipeline(repo: Path) -> tuple[str, str]:
    """The starter text and a word on what it was guessed from."""
    if (repo / "pyproject.toml").exists() or (repo / "setup.py").exists():
        install, extra = python_install(repo)
        found = f"a Python project: a venv in the workspace, {extra}, pytest"
        return _HEADER + _PYTHON.format(install=install), found
    if (repo / "package.json").exists():
        install = "npm ci" if (repo / "package-lock.json").exists() else "npm install"
        return _HEADER + _NODE.format(install=install), "a Node.js project: npm test"
    if (repo / "Makefile").exists():
        return _HEADER + _MAKE, "a Makefile: make test"
    return _HEADER + _GENERIC, "no build file found: a placeholder step"


def python_install(repo: Path) -> tuple[str, str]:
    """The arguments of ``pip install`` for the project and its test
    dependencies, and a word on where they were found.

    pytest is named too: when the extra or the requirements file has it, pip
    only finds it satisfied.
    """
    extras: set[str] = set()
    try:
        with (repo / "pyproject.toml").open("rb") as fh:
            project = tomllib.load(fh).get("project", {})
        extras = set(project.get("optional-dependencies", {}) or {})
    except (OSError, tomllib.TOMLDecodeError, AttributeError):
        pass
    for extra in _TEST_EXTRAS:
        if extra in extras:
            return f"-e '.[{extra}]' pytest", f"its [{extra}] extra"
    for name in _REQUIREMENTS:
        if (repo / name).is_file():
            return f"-e . -r {shlex.quote(name)} pytest", name
    return "-e . pytest", "no test dependencies found"
