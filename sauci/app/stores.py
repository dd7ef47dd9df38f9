"""The store a process's settings name."""

from __future__ import annotations

from sauci.core.config import Settings
from sauci.core.paths import make_private_dir
from sauci.storage import open_store
from sauci.typing import Store

__all__ = ["settings_store"]


def settings_store(settings: Settings) -> Store:
    """The store ``settings`` names; the default SQLite one in a private data dir."""
    if not settings.store:
        # 0700 (a server's 0711 stays): the store, logs and artifacts are in it.
        make_private_dir(settings.data_dir, traversable=None)
    return open_store(settings.store_url)
