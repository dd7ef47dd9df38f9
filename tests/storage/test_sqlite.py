"""SQLiteStore: the conformance suite, migrations, start-up cost, concurrency."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from sauci.core.models import BuildRequest, Status
from sauci.exceptions import ConfigError, StoreError
from sauci.storage._revision import HEAD
from sauci.storage.sqlite import SQLiteStore
from sauci.testing import StoreConformance


class TestSQLiteStore(StoreConformance):
    @pytest.fixture
    def store(self, sqlite_path: Path) -> Iterator[SQLiteStore]:
        s = SQLiteStore(sqlite_path)
        yield s
        s.close()


class TestSQLiteStoreWithoutReturning(StoreConformance):
    """The code path for SQLite older than 3.35 (no RETURNING), forced."""

    @pytest.fixture
    def store(self, sqlite_path: Path) -> Iterator[SQLiteStore]:
        s = SQLiteStore(sqlite_path)
        s._db.returning = False
        yield s
        s.close()


def test_capabilities() -> None:
    assert frozenset({"atomic_claim", "analytics", "durable", "log_files"}) == (
        SQLiteStore.capabilities
    )


def test_a_new_database_is_created_at_the_head_revision(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    SQLiteStore(path).close()
    with sqlite3.connect(path) as conn:
        assert [(HEAD,)] == conn.execute("SELECT version_num FROM alembic_version").fetchall()
        assert "wal" == conn.execute("PRAGMA journal_mode").fetchone()[0]
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"builds", "steps", "log_chunks", "test_results", "artifacts", "events"} <= tables


def test_data_survives_reopening(sqlite_path: Path) -> None:
    with SQLiteStore(sqlite_path) as store:
        build = store.create_build(BuildRequest(repo="r", params={"k": "v"}))
        store.append_log(build.id, "test", b"\x00\xffdata")
    with SQLiteStore(sqlite_path) as store:
        assert build == store.get_build(build.id)
        assert b"\x00\xffdata" == store.read_log(build.id, "test")


def test_connections_enforce_foreign_keys_and_wal(sqlite_path: Path) -> None:
    store = SQLiteStore(sqlite_path)
    with store._db.transaction("test", write=False) as tx:
        assert [{"foreign_keys": 1}] == tx.fetchall("PRAGMA foreign_keys")
        assert [{"journal_mode": "wal"}] == tx.fetchall("PRAGMA journal_mode")
        assert [{"synchronous": 1}] == tx.fetchall("PRAGMA synchronous")  # NORMAL
    store.close()


def test_head_constant_is_alembic_head() -> None:
    from sauci.storage.migrations import head_revision

    assert head_revision() == HEAD


def test_migrations_create_exactly_the_schema_module(tmp_path: Path) -> None:
    import sqlalchemy as sa
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from sauci.storage.schema import include_name, metadata

    path = tmp_path / "m.db"
    SQLiteStore(path).close()
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.connect() as conn:
        diffs = compare_metadata(
            MigrationContext.configure(conn, opts={"include_name": include_name}), metadata
        )
    engine.dispose()
    assert [] == diffs


def test_opening_a_migrated_database_does_not_import_sqlalchemy(sqlite_path: Path) -> None:
    # `sauci run` must start in well under 100 ms; SQLAlchemy alone costs ~150 ms.
    script = textwrap.dedent(
        """
        import json, sys, time
        t0 = time.perf_counter()
        from sauci.core.models import BuildRequest, StepRun
        from sauci.storage import open_store
        store = open_store(sys.argv[1])
        build = store.create_build(BuildRequest(repo="r"))
        store.save_step(StepRun(build_id=build.id, name="test"))
        store.append_log(build.id, "test", b"x" * 1000)
        store.close()
        print(json.dumps({
            "seconds": time.perf_counter() - t0,
            "loaded": sorted(m for m in ("sqlalchemy", "alembic") if m in sys.modules),
        }))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script, f"sqlite:///{sqlite_path}"],
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(out.stdout)
    assert [] == result["loaded"]
    assert result["seconds"] < 1.0  # generous for loaded CI machines; about 45 ms here


def test_migrate_false_refuses_a_database_without_schema(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="schema revision None"):
        SQLiteStore(tmp_path / "empty.db", migrate=False)


def test_migrate_false_opens_a_migrated_database(sqlite_path: Path) -> None:
    SQLiteStore(sqlite_path, migrate=False).close()


def test_a_database_from_a_newer_sauci_is_an_error(sqlite_path: Path) -> None:
    with sqlite3.connect(sqlite_path) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999'")
    with pytest.raises(StoreError, match="9999"):
        SQLiteStore(sqlite_path)


def test_concurrent_first_opens_migrate_once(tmp_path: Path) -> None:
    path = tmp_path / "raced.db"
    script = (
        "import sys; from sauci.storage.sqlite import SQLiteStore; SQLiteStore(sys.argv[1]).close()"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", script, str(path)], stderr=subprocess.PIPE)
        for _ in range(3)
    ]
    errors = [p.communicate(timeout=60)[1] for p in procs]
    assert [0, 0, 0] == [p.returncode for p in procs], errors
    with sqlite3.connect(path) as conn:
        assert [(HEAD,)] == conn.execute("SELECT version_num FROM alembic_version").fetchall()


def test_several_stores_on_one_file_claim_each_build_once(sqlite_path: Path) -> None:
    stores = [SQLiteStore(sqlite_path) for _ in range(4)]
    created = {stores[0].create_build(BuildRequest(repo="r")).id for _ in range(60)}
    claimed: list[int] = []
    lock = threading.Lock()

    def claim(store: SQLiteStore) -> None:
        while (build := store.claim_build("w")) is not None:
            with lock:
                claimed.append(build.id)

    threads = [threading.Thread(target=claim, args=(s,)) for s in stores for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for s in stores:
        s.close()
    assert sorted(created) == sorted(claimed)


def test_the_queries_use_the_indexes(sqlite_path: Path) -> None:
    conn = sqlite3.connect(sqlite_path)

    def plan(sql: str) -> str:
        return " ".join(r[-1] for r in conn.execute(f"EXPLAIN QUERY PLAN {sql}"))

    claim = "SELECT id FROM builds WHERE status = 'queued' ORDER BY priority DESC, id LIMIT 1"
    assert "ix_builds_status_priority_id" in plan(claim)
    assert "TEMP B-TREE" not in plan(claim)  # no sort: the index order is the claim order
    assert "ix_builds_repo_id" in plan("SELECT id FROM builds WHERE repo = 'r' ORDER BY id DESC")
    assert "ix_builds_ref" in plan("SELECT id FROM builds WHERE ref = 'x'")
    assert "ix_steps_build_id_position" in plan("SELECT * FROM steps WHERE build_id = 1")
    read_log = (
        "SELECT \"offset\", data FROM log_chunks WHERE build_id = 1 AND step = 't'"
        ' AND "offset" >= 5 AND "offset" < 10 ORDER BY "offset"'
    )
    assert "ix_log_chunks_build_id_step_offset" in plan(read_log)
    conn.close()


def test_sqlite_errors_become_store_errors(tmp_path: Path) -> None:
    bad = tmp_path / "garbage.db"
    bad.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match=r"garbage\.db") as info:
        SQLiteStore(bad)
    assert isinstance(info.value.__cause__, sqlite3.Error)


def test_a_missing_directory_is_a_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError):
        SQLiteStore(tmp_path / "no" / "such" / "dir" / "x.db")


def test_a_closed_store_raises_store_error(sqlite_path: Path) -> None:
    store = SQLiteStore(sqlite_path)
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.list_builds()


def test_a_busy_database_is_a_store_error_after_the_timeout(sqlite_path: Path) -> None:
    store = SQLiteStore(sqlite_path, timeout=0.05)
    blocker = sqlite3.connect(sqlite_path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreError, match="locked"):
            store.create_build(BuildRequest(repo="r"))
        assert [] == store.list_builds()  # readers are not blocked (WAL)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert Status.QUEUED == store.create_build(BuildRequest(repo="r")).status
    store.close()


@pytest.mark.parametrize("path", [":memory:", "", "file:x?mode=memory"])
def test_in_memory_sqlite_is_refused(path: str) -> None:
    with pytest.raises(ConfigError, match="memory://"):
        SQLiteStore(path)
