"""Store adapters, and ``open_store(url)`` to pick one by URL.

Back ends are imported only when used: ``open_store("sqlite:///...")`` loads
neither SQLAlchemy nor alembic (unless the database needs migrating). The
scheme (before ``:``, and before ``+`` in ``postgresql+psycopg``) is resolved
through the one adapter table, ``sauci.plugins.STORES``, then the
``sauci.stores`` entry points; a store class is made by its ``from_url(url)``,
or called with the URL.

    memory://                          MemoryStore
    sqlite:///relative.db              SQLiteStore (stdlib sqlite3)
    sqlite:////absolute/path.db        SQLiteStore
    path/to/file.db, ….sqlite(3)       SQLiteStore
    postgresql://… postgresql+psycopg://… postgres://…
                                       SQLAlchemyStore (psycopg 3)
    sqlalchemy+<any SQLAlchemy URL>    SQLAlchemyStore, even for sqlite
    redis://host:port/db?prefix=p      RedisStore (the redis extra)
    duckdb:///path.duckdb, duckdb://:memory:
                                       DuckDBStore (the duckdb extra)
    stream+redis://host:port/db?prefix=p
                                       StreamStore: Redis Streams + a MemoryStore view
    stream+kafka://host:port?prefix=p  StreamStore on a Kafka topic (the kafka extra)
    tee:PRIMARY;SECONDARY[;...]        TeeStore: writes go to every store
    <scheme>://…                       the ``sauci.stores`` entry point <scheme>
"""

from __future__ import annotations

import os
from pathlib import Path

from sauci.exceptions import ConfigError
from sauci.plugins import STORE_ALIASES, STORE_FORMS, STORES
from sauci.storage.memory import MemoryStore
from sauci.storage.sqlite import SQLiteStore
from sauci.typing import Store

__all__ = ["MemoryStore", "SQLiteStore", "default_store_url", "open_store"]

_SQLITE_SUFFIXES = (".db", ".sqlite", ".sqlite3")


def default_store_url() -> str:
    """The embedded default: an SQLite file in SauCI's data directory.

    ``$SAUCI_DATA_DIR/sauci.db`` if set, else ``$XDG_DATA_HOME/sauci/sauci.db``,
    else ``~/.local/share/sauci/sauci.db``. The directory is created.
    """
    data_dir = os.environ.get("SAUCI_DATA_DIR")
    if data_dir:
        directory = Path(data_dir)
    else:
        xdg = os.environ.get("XDG_DATA_HOME")
        base = Path(xdg) if xdg else Path.home() / ".local" / "share"
        directory = base / "sauci"
    directory = directory.expanduser().absolute()
    directory.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{directory / 'sauci.db'}"


def open_store(url: str) -> Store:
    """The store a URL names (see the module docstring for the forms)."""
    scheme = url.partition(":")[0]
    name = scheme.partition("+")[0].lower()
    name = STORE_ALIASES.get(name, name)
    known = STORES.builtins if name in STORES.builtins else STORES.known()
    if name not in known and "://" in url:
        close = STORES.closest(name, known)
        hint = f"; did you mean {_form(close)}?" if close else ""
        forms = ", ".join(sorted(map(_form, known)))
        raise ConfigError(f"unknown store scheme {scheme!r} in {url!r}{hint} (known: {forms})")
    if name not in known:  # a bare file name
        if url.lower().endswith(_SQLITE_SUFFIXES):
            return SQLiteStore(url)
        raise ConfigError(
            f"unknown store {url!r}: expected a URL such as memory://, sqlite:///path.db "
            "or postgresql://user@host/db, or a file name ending in .db or .sqlite"
        )
    factory = STORES.load(name)
    # A store class may offer from_url(url); anything else is called with the URL.
    make = getattr(factory, "from_url", factory)
    return make(url)  # type: ignore[no-any-return]


def _form(name: str) -> str:
    return STORE_FORMS.get(name, f"{name}://")
