"""The public API is exactly what `sauci.__all__` says, and every name resolves."""

from __future__ import annotations

import subprocess
import sys

import sauci


def test_all_is_sorted_and_every_name_resolves():
    assert sauci.__all__ == sorted(sauci.__all__)
    for name in sauci.__all__:
        assert getattr(sauci, name) is not None, name


def test_exported_members_are_exactly_the_public_api():
    public = {name for name in dir(sauci) if not name.startswith("_")}
    assert public == set(sauci.__all__) - {"__version__"}


def test_version_comes_from_package_metadata():
    from importlib.metadata import version

    assert sauci.__version__ == version("sauci")


def test_importing_sauci_and_the_cli_stays_light():
    """`sauci run` must start fast: no SQLAlchemy, GitPython, alembic or structlog on import."""
    code = "import sys, sauci, sauci.cli; print(sorted(m for m in ('sqlalchemy','git','alembic','structlog','django') if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_exceptions_inherit_stdlib_bases():
    from sauci.exceptions import ConfigError, NotFoundError, PipelineError, StoreError

    assert issubclass(ConfigError, ValueError)
    assert issubclass(PipelineError, ConfigError)
    assert issubclass(StoreError, RuntimeError)
    assert issubclass(NotFoundError, LookupError)
