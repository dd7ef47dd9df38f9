"""The stores benchmarks/chaos.py runs on, each on a real server of its own
started the way the tests start theirs (tests/storage/redis_server.py and
the PostgreSQL helper in tests/storage/conftest.py, reused): ``url``, and
``stop()``/``start()`` for an outage that keeps the data."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
_STORAGE_TESTS = ROOT / "tests" / "storage"

STORES = ("sqlite", "postgres", "redis", "stream")


def _storage_helpers() -> Any:
    spec = importlib.util.spec_from_file_location(
        "storage_fixtures", _STORAGE_TESTS / "conftest.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Embedded:
    """SQLite: a file, no server to stop (the store faults do not apply)."""

    outages = False

    def __init__(self, workdir: Path) -> None:
        self.url = f"sqlite:///{workdir / 'sauci.db'}"

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def close(self) -> None:
        pass


class OnRedis:
    """A redis-server that keeps its data across a restart (append-only)."""

    outages = True

    def __init__(self, workdir: Path, *, stream: bool) -> None:
        sys.path.insert(0, str(_STORAGE_TESTS))
        from redis_server import RedisServer

        self.server = RedisServer("redis-server", persist_dir=str(workdir))
        self.url = ("stream+" if stream else "") + self.server.url

    def start(self) -> None:
        self.server.start()

    def stop(self) -> None:
        self.server.stop()

    def close(self) -> None:
        self.server.stop()


class OnPostgres:
    """A PostgreSQL cluster of its own, its database migrated."""

    outages = True

    def __init__(self, workdir: Path) -> None:
        helpers = _storage_helpers()
        bin_dir = helpers._find_pg_bin()
        if bin_dir is None:
            raise SystemExit("PostgreSQL binaries not found (initdb, pg_ctl)")
        self.server = helpers.PostgresServer(bin_dir)
        self.server.init()
        self._admin = helpers._admin
        self.url = self.server.url_for("sauci_chaos")
        self._created = False

    def start(self) -> None:
        self.server.start()
        if not self._created:
            with self._admin(self.server.url) as conn:
                conn.execute("CREATE DATABASE sauci_chaos")
            self._created = True

    def stop(self) -> None:
        self.server.stop()

    def close(self) -> None:
        self.server.cleanup()


def store_server(kind: str, workdir: Path) -> Embedded | OnRedis | OnPostgres:
    """The server for ``kind`` (one of STORES), not started yet."""
    if kind == "sqlite":
        return Embedded(workdir)
    if kind == "postgres":
        return OnPostgres(workdir)
    return OnRedis(workdir, stream=kind == "stream")
