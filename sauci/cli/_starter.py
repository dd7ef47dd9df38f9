"""``sauci init``: a commented starter pipeline guessed from the repository."""

from __future__ import annotations

from pathlib import Path

__all__ = ["starter_pipeline"]

_HEADER = """\
# SauCI pipeline: https://sauci.readthedocs.io/ (reference: docs/pipeline.md)
# Each step runs with `bash -eo pipefail`; steps run in file order unless they
# say what they `needs`. Check this file with: sauci validate
"""

_PYTHON = """\
steps:
  - name: install
    run: pip install -e '.[test]' || pip install -e .
    timeout: 10m
  - name: test
    run: python -m pytest -q --junitxml=reports/junit.xml
    junit: reports/*.xml          # parsed into test results
    # retries: 1                  # retry a flaky step
    # limits: {memory: 2GiB}      # honoured by sandboxes that can
"""

_NODE = """\
steps:
  - name: install
    run: npm ci
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
        return _HEADER + _PYTHON, "a Python project: pytest"
    if (repo / "package.json").exists():
        return _HEADER + _NODE, "a Node.js project: npm test"
    if (repo / "Makefile").exists():
        return _HEADER + _MAKE, "a Makefile: make test"
    return _HEADER + _GENERIC, "no build file found: a placeholder step"
