"""The build search's own index (migration 0006): SQLite's FTS5 table stays equal
to ``builds`` through inserts, updates and deletes made by any writer, and the
store reads it; PostgreSQL's pg_trgm indexes exist and serve the store's
``LOWER(col) LIKE``. What is found is checked by every store in
``BuildStoreConformance`` (``test_list_builds_takes_search_text_literally``)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa

from sauci.core.models import BuildRequest
from sauci.storage.migrations import upgrade
from sauci.storage.sqlalchemy import SQLAlchemyStore
from sauci.storage.sqlite import SQLiteStore
from sauci.typing import BuildQuery

_INTEGRITY = "INSERT INTO builds_search (builds_search, rank) VALUES ('integrity-check', 1)"


def test_sqlite_search_index_follows_every_write(tmp_path: Path) -> None:
    db = tmp_path / "sauci.db"
    with SQLiteStore(db) as store:
        a = store.create_build(
            BuildRequest(repo="acme/app", message="first words", ref="refs/heads/topic-a")
        )
        b = store.create_build(BuildRequest(repo="acme/app", message="second words"))
        store.update_build(a.id, ref="refs/heads/topic-b", sha="9" * 40)
        assert store._has_search()  # the store reads the index, not a scan
        conn = sqlite3.connect(db)
        with conn:  # another writer, straight into the table: the triggers follow it
            conn.execute("DELETE FROM builds WHERE id = ?", (b.id,))
            conn.execute("UPDATE builds SET message = 'third words' WHERE id = ?", (a.id,))
        conn.execute(_INTEGRITY)  # raises when the index and the table differ
        conn.close()
        assert [a.id] == [x.id for x in store.list_builds(text="third")]
        assert [] == store.list_builds(text="second")
        assert [] == store.list_builds(text="first")
        assert [a.id] == [x.id for x in store.list_builds(text="topic-b")]


def test_sqlite_search_index_is_read_by_the_query(tmp_path: Path) -> None:
    """The page's query plan reads builds_search's index, not every row of builds."""
    db = tmp_path / "sauci.db"
    SQLiteStore(db).close()
    conn = sqlite3.connect(db)
    plan = " ".join(
        str(r[-1])
        for r in conn.execute(
            "EXPLAIN QUERY PLAN SELECT id FROM builds WHERE repo = 'r' AND id IN"
            " (SELECT rowid FROM builds_search WHERE builds_search MATCH '\"abc\"')"
            " ORDER BY id DESC LIMIT 51"
        )
    )
    conn.close()
    assert "VIRTUAL TABLE INDEX" in plan and "builds_search" in plan


@pytest.mark.postgres
def test_postgres_trigram_indexes_serve_the_search(fresh_postgres_database: str) -> None:
    upgrade(fresh_postgres_database)
    engine = sa.create_engine(fresh_postgres_database, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            names = set(
                conn.exec_driver_sql(
                    "SELECT indexname FROM pg_indexes WHERE tablename = 'builds'"
                ).scalars()
            )
            assert {f"ix_builds_search_{c}" for c in ("message", "author", "ref", "sha")} <= names
            conn.exec_driver_sql("SET enable_seqscan = off")
            plan = " ".join(
                str(r[0])
                for r in conn.exec_driver_sql(
                    "EXPLAIN SELECT id FROM builds WHERE LOWER(message) LIKE '%%abcd%%'"
                    " OR LOWER(sha) LIKE '%%abcd%%'"
                )
            )
            assert "ix_builds_search_message" in plan and "ix_builds_search_sha" in plan
    finally:
        engine.dispose()
    with SQLAlchemyStore(fresh_postgres_database) as store:
        a = store.create_build(BuildRequest(repo="acme/app", message='a "quoted" NEAR( 100%_ text'))
        assert [a.id] == [x.id for x in store.list_builds(text='"QUOTED" near( 100%_')]


@pytest.mark.postgres
def test_postgres_plans_each_search_for_its_own_text(postgres_url: str) -> None:
    """A generic plan (psycopg prepares a statement run 5 times) walks every
    build by id for a rare text; each search transaction asks for a custom plan."""
    seen: list[str] = []
    with SQLAlchemyStore(postgres_url) as store:
        sa.event.listen(
            store.engine, "before_cursor_execute", lambda *a: seen.append(str(a[2])), retval=False
        )
        store.list_builds(text="rare text")
        store.build_stats(query=BuildQuery(text="rare text"))
        store.list_builds(repo="app")
    custom = [i for i, sql in enumerate(seen) if "plan_cache_mode = force_custom_plan" in sql]
    assert 2 == len(custom)
    assert all("LIKE" in seen[i + 1] for i in custom)  # the search runs right after, in its tx
