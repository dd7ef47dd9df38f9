"""Registering a repository for a server to build: its location resolved, its hook
installed, its record saved. ``sauci repo add``, ``sauci serve --repo`` and
Django's ``sauci_serve --repo`` all do it here."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Literal

from sauci.core.config import Settings
from sauci.core.models import Repo
from sauci.exceptions import ConfigError
from sauci.source.git import is_remote
from sauci.triggers import install_hook, is_bare, repo_id
from sauci.typing import Store

__all__ = ["hook_kind", "register_repo", "resolve_location"]


def resolve_location(value: str) -> str:
    """An absolute path for a local repository, the URL otherwise."""
    if is_remote(value):
        return value
    path = Path(value).expanduser()
    if not path.exists():
        raise ConfigError(f"repository {value} does not exist")
    return str(path.resolve())


def hook_kind(kind: str) -> Literal["receive", "commit"]:
    """A repository's hook kind, as ``install_hook`` and ``remove_hook`` take it."""
    if kind not in ("receive", "commit"):
        raise ConfigError(f"unknown hook kind {kind!r}; expected receive or commit")
    return "receive" if kind == "receive" else "commit"


def register_repo(
    store: Store, settings: Settings, location: str, hook: str | None, poll: float | None
) -> Repo:
    """Install the hook ``hook`` asks for (default: receive for a bare repository,
    commit for a working one; none for a URL) and save the repository's record."""
    kind = "none"
    if not is_remote(location) and hook != "none":
        wanted = hook or ("receive" if is_bare(Path(location)) else "commit")
        install_hook(Path(location), settings.data_dir / "spool", hook_kind(wanted))
        kind = wanted
    repo = Repo(
        id=repo_id(location),
        location=location,
        hook=kind,
        poll_interval=poll if (poll or kind == "none") else None,
        added_at=time.time(),
    )
    return store.save_repo(repo)
