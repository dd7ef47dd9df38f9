"""The secret values a step may receive, and where a server reads them from.

A step receives a secret only when its pipeline names it (``secrets: [NAME]``)
and the server holds a value for that name for the build's repository.
Under a server the values come from its secrets file and from environment
variables ``SAUCI_SECRET_<NAME>``, never from the rest of the server's
environment (where its admin password, webhook secret and database URL
live). The library and ``sauci run`` on the user's own checkout pass their
own environment, which the user owns.

The secrets file is TOML; top-level keys are for every repository, a table
named after a repository's location is for that repository alone::

    CODECOV_TOKEN = "..."

    ["/srv/git/app.git"]
    DEPLOY_KEY = "..."
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

import attrs

from sauci.exceptions import ConfigError

__all__ = ["ENV_PREFIX", "Secrets", "load_secrets"]

ENV_PREFIX = "SAUCI_SECRET_"
_NAME = r"[A-Za-z_][A-Za-z0-9_]*"  # compiled by re at its first use


@attrs.frozen(kw_only=True, repr=False)
class Secrets:
    """Secret values: ``shared`` for every repository, ``per_repo`` by location."""

    shared: Mapping[str, str] = attrs.field(factory=dict)
    per_repo: Mapping[str, Mapping[str, str]] = attrs.field(factory=dict)

    def __repr__(self) -> str:  # the names, never the values
        return f"Secrets(names={sorted(self.names())!r})"

    @classmethod
    def of(cls, values: Mapping[str, str] | None) -> Secrets:
        """``values`` for every repository; None: this process's environment."""
        return cls(shared=dict(os.environ if values is None else values))

    def names(self) -> set[str]:
        return set(self.shared).union(*(set(v) for v in self.per_repo.values()))

    def for_repo(self, repo: str) -> dict[str, str]:
        """The values a build of ``repo`` may receive (its own over the shared ones)."""
        out = dict(self.shared)
        for location, values in self.per_repo.items():
            if _same_repo(location, repo):
                out.update(values)
        return out


def _same_repo(location: str, repo: str) -> bool:
    if location == repo:
        return True
    if "://" in location or "://" in repo or "@" in repo:
        return location.rstrip("/") == repo.rstrip("/")
    return os.path.abspath(location).rstrip("/") == os.path.abspath(repo).rstrip("/")


def load_secrets(path: Path | None, environ: Mapping[str, str] | None = None) -> Secrets:
    """A server's secrets: ``SAUCI_SECRET_<NAME>`` variables, then the file at ``path``."""
    environ = os.environ if environ is None else environ
    shared = {
        key[len(ENV_PREFIX) :]: value
        for key, value in environ.items()
        if key.startswith(ENV_PREFIX) and re.fullmatch(_NAME, key[len(ENV_PREFIX) :])
    }
    per_repo: dict[str, dict[str, str]] = {}
    if path is not None:
        for key, value in _read(path).items():
            if isinstance(value, dict):
                per_repo[key] = _values(value, path, f"[{key!r}]")
            else:
                shared.update(_values({key: value}, path, "the top level"))
    return Secrets(shared=shared, per_repo=per_repo)


def _read(path: Path) -> dict[str, object]:
    import tomllib

    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: the secrets file does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the secrets file: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not a valid TOML file: {exc}") from exc


def _values(table: Mapping[str, object], path: Path, where: str) -> dict[str, str]:
    out = {}
    for name, value in table.items():
        if not re.fullmatch(_NAME, name):
            raise ConfigError(f"{path}: {where}: {name!r} is not a variable name")
        if not isinstance(value, str):
            raise ConfigError(f"{path}: {where}: {name} must be a string")
        out[name] = value
    return out
