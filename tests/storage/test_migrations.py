"""Migrations of databases that hold data: each revision upgrades an older
database in place, keeps what it holds and gives new columns their defaults."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from sauci.core.models import Repo, Status, Worker
from sauci.storage._revision import HEAD
from sauci.storage.migrations import upgrade
from sauci.storage.sqlalchemy import SQLAlchemyStore
from sauci.storage.sqlite import SQLiteStore
from sauci.typing import Store

# Rows as a 0002 database holds them (no runs_on, attempt, heartbeat_at; no workers).
_BUILD_0002 = (
    "INSERT INTO builds (repo, ref, sha, event, status, reason, priority, params, author,"
    " message, pusher, old_sha, queued_at, started_at, finished_at, claimed_by, reuse_from,"
    " cancel_requested) VALUES ('acme/app', 'refs/heads/main', 'abc', 'push', :status, NULL,"
    " 2, '{\"PY\": \"3.11\"}', 'ada', 'msg', 'ada', '', 100.0, :started, NULL, :worker, NULL,"
    " NULL)"
)
_ROWS_0002 = [
    (
        "INSERT INTO steps (build_id, name, position, status, attempt, allow_failure, needs,"
        " log_bytes) VALUES (1, 'test', 0, 'running', 1, false, '[]', 5)"
    ),
    (
        'INSERT INTO log_chunks (build_id, step, seq, "offset", size, data)'
        " VALUES (1, 'test', 0, 0, 5, :data)"
    ),
    (
        "INSERT INTO repos (id, location, hook, poll_interval, added_at)"
        " VALUES ('app', '/srv/app.git', 'receive', NULL, 1.5)"
    ),
]


def _fill_0002(conn: Any) -> None:
    """Two builds (one running on w1, one queued), a step, a log, a repo."""
    conn.execute(sa.text(_BUILD_0002), {"status": "running", "started": 101.0, "worker": "w1"})
    conn.execute(sa.text(_BUILD_0002), {"status": "queued", "started": None, "worker": None})
    for sql in _ROWS_0002:
        conn.execute(sa.text(sql), {"data": b"hello"})


def _check_upgraded(store: Store) -> None:
    running, queued = store.get_build(1), store.get_build(2)
    assert (Status.RUNNING, "w1", 101.0, {"PY": "3.11"}) == (
        running.status,
        running.claimed_by,
        running.started_at,
        dict(running.params),
    )
    # The new columns' defaults: no labels asked for, first attempt, no heartbeat yet.
    assert [((), 1, None), ((), 1, None)] == [
        (b.runs_on, b.attempt, b.heartbeat_at) for b in (running, queued)
    ]
    assert b"hello" == store.read_log(1, "test")
    assert ["test"] == [s.name for s in store.list_steps(1)]
    assert [Repo(id="app", location="/srv/app.git", hook="receive", added_at=1.5)] == (
        store.list_registered_repos()
    )
    assert [] == store.list_workers()
    # Builds recorded before 0006 are in its search index (or found by the scan).
    assert [2, 1] == [b.id for b in store.list_builds(text="heads/MAIN")]
    # The new operations work on the builds recorded before the upgrade.
    assert store.heartbeat_build(1, "w1") is True
    finished = store.finish_build(1, "w1", status=Status.PASSED, reason=None, finished_at=200.0)
    assert finished is not None
    assert (Status.PASSED, 200.0) == (finished.status, finished.finished_at)
    claimed = store.claim_build("w2", build_id=2)
    assert claimed is not None
    assert "w2" == claimed.claimed_by
    store.save_worker(Worker(name="w2", running=(2,)))
    assert [Worker(name="w2", running=(2,))] == store.list_workers()


def _assert_schema_is_head(engine: sa.Engine) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from sauci.storage.schema import include_name, metadata

    with engine.connect() as conn:
        assert HEAD == MigrationContext.configure(conn).get_current_revision()
        context = MigrationContext.configure(conn, opts={"include_name": include_name})
        assert [] == compare_metadata(context, metadata)


def test_a_0002_sqlite_database_with_data_is_upgraded_by_opening_it(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    engine = sa.create_engine(f"sqlite:///{path}")
    upgrade(engine, "0002")
    with engine.begin() as conn:
        _fill_0002(conn)
    with sqlite3.connect(path) as raw:
        assert [("0002",)] == raw.execute("SELECT version_num FROM alembic_version").fetchall()
    with SQLiteStore(path) as store:
        _check_upgraded(store)
    _assert_schema_is_head(engine)
    engine.dispose()


@pytest.mark.postgres
def test_a_0002_postgres_database_with_data_is_upgraded_by_opening_it(
    fresh_postgres_database: str,
) -> None:
    engine = sa.create_engine(fresh_postgres_database, poolclass=sa.pool.NullPool)
    upgrade(engine, "0002")
    with engine.begin() as conn:
        _fill_0002(conn)
    with SQLAlchemyStore(fresh_postgres_database) as store:
        _check_upgraded(store)
    _assert_schema_is_head(engine)
    engine.dispose()


def _alembic_check(url: str) -> None:
    from alembic import command

    from sauci.storage.migrations import alembic_config, upgrade

    upgrade(url)
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            # AutogenerateDiffsDetected when the tables and the migrations differ.
            command.check(alembic_config(conn))
    finally:
        engine.dispose()


def test_alembic_check_finds_no_drift_on_a_fresh_sqlite_database(tmp_path: Path) -> None:
    """`alembic check` over fresh SQLite: the migrations make exactly schema.py's tables."""
    _alembic_check(f"sqlite:///{tmp_path / 'fresh.db'}")


def test_alembic_check_finds_no_drift_on_a_fresh_postgres_database(
    fresh_postgres_database: str,
) -> None:
    """`alembic check` over a fresh PostgreSQL database, as CI would run it."""
    _alembic_check(fresh_postgres_database)


def test_alembic_check_fails_when_the_tables_drift(tmp_path: Path) -> None:
    """The guard can fail: a column schema.py has and no migration makes is reported."""
    from alembic.util.exc import AutogenerateDiffsDetected

    from sauci.storage.schema import metadata

    column = sa.Column("drift_probe", sa.Text, nullable=True)
    metadata.tables["repos"].append_column(column)
    try:
        with pytest.raises(AutogenerateDiffsDetected, match="drift_probe"):
            _alembic_check(f"sqlite:///{tmp_path / 'drift.db'}")
    finally:
        metadata.tables["repos"]._columns.remove(column)


def _columns(engine: sa.Engine, table: str) -> list[str]:
    return [column["name"] for column in sa.inspect(engine).get_columns(table)]


def _downgrade_then_upgrade_again(url: str) -> None:
    """Down to 0001 and back up in one process: every migration that adds
    columns (0002, 0003, 0005, 0007 through migrations/_columns.py) drops
    exactly those, and the same column objects go into the database again."""
    from alembic import command

    from sauci.storage.migrations import alembic_config

    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        upgrade(engine)
        head_builds, head_workers = _columns(engine, "builds"), _columns(engine, "workers")
        with engine.begin() as conn:
            command.downgrade(alembic_config(conn), "0001")
        assert "claimed_by" == _columns(engine, "builds")[-1]
        assert "workers" not in sa.inspect(engine).get_table_names()
        upgrade(engine, "0004")
        assert "heartbeat_at" == _columns(engine, "builds")[-1]
        assert "state" == _columns(engine, "workers")[-1]
        upgrade(engine)
        assert (head_builds, head_workers) == (
            _columns(engine, "builds"),
            _columns(engine, "workers"),
        )
        _assert_schema_is_head(engine)
    finally:
        engine.dispose()


def test_the_column_migrations_go_down_and_up_again_on_sqlite(tmp_path: Path) -> None:
    _downgrade_then_upgrade_again(f"sqlite:///{tmp_path / 'updown.db'}")


@pytest.mark.postgres
def test_the_column_migrations_go_down_and_up_again_on_postgres(
    fresh_postgres_database: str,
) -> None:
    _downgrade_then_upgrade_again(fresh_postgres_database)
