"""The public API is exactly what `sauci.__all__` says, and every name resolves."""

from __future__ import annotations

import subprocess
import sys
import types

import sauci


def test_all_is_sorted_and_every_name_resolves():
    assert sauci.__all__ == sorted(sauci.__all__)
    for name in sauci.__all__:
        assert getattr(sauci, name) is not None, name


def test_exported_members_are_exactly_the_public_api():
    """Every public name the package defines is in __all__ and nothing else is
    (its subpackages, such as sauci.storage, are reached by their own names)."""
    public = {
        name
        for name, value in vars(sauci).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert set(sauci.__all__) - {"__version__"} == public


def test_settings_are_public():
    """Settings and load_settings are exported: embedding SauCI starts from them."""
    from sauci.core.config import Settings, load_settings

    assert {"Settings", "load_settings"} <= set(sauci.__all__)
    assert (Settings, load_settings) == (sauci.Settings, sauci.load_settings)


def test_version_comes_from_package_metadata():
    from importlib.metadata import version

    assert sauci.__version__ == version("sauci")


def test_importing_sauci_and_the_cli_stays_light():
    """`sauci run` must start fast: importing the package and the command line
    loads none of the heavy optional back ends, nor the YAML parser."""
    heavy = ("sqlalchemy", "git", "alembic", "django", "docker", "celery", "yaml")
    code = f"import sys, sauci, sauci.cli; print(sorted(m for m in {heavy!r} if m in sys.modules))"
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
