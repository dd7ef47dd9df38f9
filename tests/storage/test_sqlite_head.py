"""A new SQLite store gets the head schema from migrations/sqlite_head.sql, with
sqlite3 alone, and that file is exactly what the migrations make (issue "One
house", item 8: SQLAlchemy and alembic off the paths that do not need them;
issue "Operations that tell the truth", item 6: a first start's memory)."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from sauci.storage._revision import HEAD
from sauci.storage.migrations import sqlite_head, upgrade
from sauci.storage.sqlite import SQLiteStore

REGENERATE = "python -c 'from sauci.storage.migrations.sqlite_head import write_head; write_head()'"


def _schema(path: Path) -> list[tuple[str, str, str]]:
    """Every object of a database with its SQL, blanks folded."""
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute(
            "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL"
        ).fetchall()
        (revision,) = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    finally:
        conn.close()
    folded = [(kind, name, re.sub(r"\s+", " ", sql).strip()) for kind, name, sql in rows]
    return sorted([*folded, ("revision", revision, "")])


def _migrated(tmp_path: Path) -> Path:
    path = tmp_path / "migrated.db"
    upgrade(sa.engine.URL.create("sqlite", database=str(path)))
    return path


def test_the_head_file_is_what_the_migrations_make(tmp_path):
    conn = sqlite3.connect(_migrated(tmp_path))
    try:
        made = sqlite_head.dump_head(conn)
    finally:
        conn.close()
    if "builds_search" not in made:  # migration 0006 makes it only where it can
        pytest.skip("this SQLite has no FTS5 trigram tokenizer; the file is written where it has")
    assert made == sqlite_head.HEAD_SQL.read_text(encoding="utf-8"), (
        f"the migrations changed: write {sqlite_head.HEAD_SQL.name} again with {REGENERATE}"
    )
    assert f"VALUES ('{HEAD}')" in made


def test_a_new_store_has_the_schema_the_migrations_make(tmp_path):
    SQLiteStore(tmp_path / "new.db").close()
    assert _schema(_migrated(tmp_path)) == _schema(tmp_path / "new.db")


def test_a_new_store_imports_neither_sqlalchemy_nor_alembic(tmp_path):
    code = (
        "import sys; from sauci.storage.sqlite import SQLiteStore; "
        f"SQLiteStore({str(tmp_path / 'fresh.db')!r}).close(); "
        "print(sorted(m for m in ('sqlalchemy', 'alembic') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert "[]" == out.strip()


def test_a_database_with_tables_of_its_own_goes_through_the_migrations(tmp_path):
    """Someone's file with a table in it: not treated as new, nothing of it lost."""
    path = tmp_path / "theirs.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE notes (text TEXT)")
    conn.execute("INSERT INTO notes VALUES ('keep me')")
    conn.commit()
    conn.close()
    SQLiteStore(path).close()
    conn = sqlite3.connect(path)
    try:
        assert [("keep me",)] == conn.execute("SELECT text FROM notes").fetchall()
        assert [(HEAD,)] == conn.execute("SELECT version_num FROM alembic_version").fetchall()
    finally:
        conn.close()


def test_a_statement_sqlite_refuses_falls_back_to_the_migrations(tmp_path, monkeypatch):
    """As on a SQLite without FTS5's trigram tokenizer: the transaction rolls
    back whole and alembic makes the schema."""
    bad = tmp_path / "head.sql"
    bad.write_text(
        "CREATE TABLE builds (id INTEGER PRIMARY KEY);\n"
        "CREATE VIRTUAL TABLE nope USING no_such_module(a);\n",
        encoding="utf-8",
    )
    monkeypatch.setattr(sqlite_head, "HEAD_SQL", bad)
    SQLiteStore(tmp_path / "new.db").close()
    assert _schema(_migrated(tmp_path)) == _schema(tmp_path / "new.db")


def test_the_statements_are_split_where_sqlite_says_they_end():
    text = (
        "-- a comment\n\nCREATE TABLE t (a TEXT);\n\n"
        "CREATE TRIGGER x AFTER INSERT ON t BEGIN SELECT 1; SELECT 2; END;\n"
    )
    assert [
        "CREATE TABLE t (a TEXT);",
        "CREATE TRIGGER x AFTER INSERT ON t BEGIN SELECT 1; SELECT 2; END;",
    ] == sqlite_head.head_statements(text)
    with pytest.raises(ValueError, match="unfinished"):
        sqlite_head.head_statements("CREATE TABLE t (a TEXT)")
