"""Store adapters, and ``open_store(url)`` to pick one by URL.

Back ends are imported only when used: ``open_store("sqlite:///...")`` loads
neither SQLAlchemy nor alembic (unless the database needs migrating), and
plugin stores are looked up in the ``sauci.stores`` entry points only for a
scheme SauCI does not know itself.

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

import importlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sauci.exceptions import ConfigError, PluginError

if TYPE_CHECKING:
    from sauci.storage.memory import MemoryStore
    from sauci.storage.sqlalchemy import SQLAlchemyStore
    from sauci.storage.sqlite import SQLiteStore
    from sauci.typing import Store

__all__ = ["MemoryStore", "SQLAlchemyStore", "SQLiteStore", "default_store_url", "open_store"]

_LAZY = {
    "MemoryStore": "sauci.storage.memory",
    "SQLAlchemyStore": "sauci.storage.sqlalchemy",
    "SQLiteStore": "sauci.storage.sqlite",
}

# Built-in schemes (what comes before "://"), for the did-you-mean message;
# "sqlalchemy" stands for the sqlalchemy+<url> prefix.
_SCHEMES = ("memory", "postgres", "postgresql", "postgresql+psycopg", "sqlalchemy", "sqlite")
_SCHEMES += ("duckdb", "redis", "rediss", "stream+kafka", "stream+redis")  # type: ignore[assignment]
_SQLITE_SUFFIXES = (".db", ".sqlite", ".sqlite3")
ENTRY_POINT_GROUP = "sauci.stores"


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'sauci.storage' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


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
    scheme, sep, _ = url.partition("://")
    if url.startswith("sqlalchemy+"):
        from sauci.storage.sqlalchemy import SQLAlchemyStore

        return SQLAlchemyStore(url.removeprefix("sqlalchemy+"))
    if url.startswith("memory:"):
        from sauci.storage.memory import MemoryStore

        return MemoryStore.from_url(url)
    if url.startswith("sqlite:"):
        from sauci.storage.sqlite import SQLiteStore

        return SQLiteStore.from_url(url)
    if scheme in ("postgresql", "postgres") or scheme.startswith("postgresql+"):
        from sauci.storage.sqlalchemy import SQLAlchemyStore

        return SQLAlchemyStore(url)
    if scheme in ("redis", "rediss"):
        from sauci.storage.redis import RedisStore

        return RedisStore.from_url(url)
    if scheme == "duckdb":
        from sauci.storage.duckdb import DuckDBStore

        return DuckDBStore.from_url(url)
    if scheme.startswith("stream+"):
        from sauci.storage.stream import StreamStore

        return StreamStore.from_url(url)
    if url.startswith("tee:"):
        from sauci.storage.tee import TeeStore

        return TeeStore.from_url(url)
    if not sep:
        if url.lower().endswith(_SQLITE_SUFFIXES):
            from sauci.storage.sqlite import SQLiteStore

            return SQLiteStore(url)
        raise ConfigError(
            f"unknown store {url!r}: expected a URL such as memory://, sqlite:///path.db "
            "or postgresql://user@host/db, or a file name ending in .db or .sqlite"
        )
    return _open_plugin(scheme, url)


def _open_plugin(scheme: str, url: str) -> Store:
    from importlib.metadata import entry_points

    found = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
    ep = found.get(scheme)
    if ep is None:
        import difflib

        known = sorted(set(_SCHEMES) | set(found))
        close = difflib.get_close_matches(scheme, known, n=1)
        hint = f"; did you mean {_form(close[0])}?" if close else ""
        raise ConfigError(
            f"unknown store scheme {scheme!r} in {url!r}{hint} "
            f"(known: {', '.join(map(_form, known))})"
        )
    try:
        factory = ep.load()
    except Exception as exc:
        raise PluginError(f"store plugin {scheme!r} ({ep.value}) does not load: {exc}") from exc
    # A plugin class may offer from_url(url); anything else is called with the URL.
    make = getattr(factory, "from_url", factory)
    return make(url)  # type: ignore[no-any-return]


def _form(scheme: str) -> str:
    return "sqlalchemy+<url>" if scheme == "sqlalchemy" else f"{scheme}://"
