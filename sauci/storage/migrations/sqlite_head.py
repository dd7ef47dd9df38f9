"""A new SQLite database at the head revision in one transaction, without alembic.

``sqlite_head.sql`` is what the migrations make of an empty SQLite database,
dumped from ``sqlite_master`` (as Rails keeps ``structure.sql`` beside its
migrations): the tables, indexes, the search table and its triggers, and the
``alembic_version`` row. A store opening a database with no tables at all
runs it with the stdlib's sqlite3 instead of importing SQLAlchemy and alembic
(0.3-0.5 s and about 25 MB that a server would then keep for its lifetime).
Any other database, or a SQLite that refuses a statement (one without FTS5's
trigram tokenizer), goes through the migrations as before.

The migrations stay the one source: tests/storage/test_sqlite_head.py fails
when this file is not what they make, and says how to write it again
(:func:`write_head`).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sauci.storage._sql_contract import Transaction

__all__ = ["HEAD_SQL", "create_head", "dump_head", "head_statements", "write_head"]

HEAD_SQL = Path(__file__).with_name("sqlite_head.sql")

# A trigger needs its tables, an index its table.
_ORDER = {"table": 0, "index": 1, "view": 2, "trigger": 3}


def head_statements(text: str | None = None) -> list[str]:
    """The statements of ``sqlite_head.sql`` (or of ``text``), one string each."""
    text = HEAD_SQL.read_text(encoding="utf-8") if text is None else text
    statements: list[str] = []
    pending = ""
    for line in text.splitlines(keepends=True):
        if not pending and (not line.strip() or line.startswith("--")):
            continue
        pending += line
        if sqlite3.complete_statement(pending):  # a trigger's body has ';' of its own
            statements.append(pending.strip())
            pending = ""
    if pending.strip():
        raise ValueError(f"{HEAD_SQL.name}: an unfinished statement at the end: {pending[:60]!r}")
    return statements


def create_head(tx: Transaction) -> bool:
    """In a write transaction: make the head schema when the database has no
    table yet (True), else leave it to the migrations (False). A statement
    SQLite refuses raises, and the caller's transaction rolls back."""
    if tx.fetchall("SELECT name FROM sqlite_master LIMIT 1"):
        return False
    for statement in head_statements():
        tx.execute(statement)
    return True


def dump_head(conn: sqlite3.Connection) -> str:
    """The text of ``sqlite_head.sql`` for a database the migrations brought to head."""
    rows = conn.execute(
        "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY rowid"
    ).fetchall()
    virtual = [name for kind, name, sql in rows if sql.upper().startswith("CREATE VIRTUAL TABLE")]
    # Tables first, then what is made on them; creation order within a kind.
    kept = sorted(
        (_ORDER[kind], position, sql)
        for position, (kind, name, sql) in enumerate(rows)
        # SQLite's own tables, and the tables a virtual table makes for itself
        if not name.startswith("sqlite_")
        and not (kind == "table" and any(name.startswith(f"{v}_") for v in virtual))
    )
    (revision,) = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    lines = [
        "-- The head schema of a new SQLite store, as the migrations make it: written by",
        "-- sauci.storage.migrations.sqlite_head.write_head(); do not edit by hand.",
        "",
    ]
    # Trailing blanks dropped, so that an editor's clean-up changes nothing.
    lines += ["\n".join(line.rstrip() for line in sql.splitlines()) + ";\n" for *_, sql in kept]
    lines.append(f"INSERT INTO alembic_version (version_num) VALUES ('{revision}');")
    return "\n".join(lines) + "\n"


def write_head(path: Path = HEAD_SQL) -> None:
    """Migrate an empty database to head with alembic and write its dump to ``path``."""
    import tempfile

    import sqlalchemy as sa

    from sauci.storage.migrations import upgrade

    with tempfile.TemporaryDirectory(prefix="sauci-head-") as tmp:
        db = Path(tmp) / "head.db"
        upgrade(sa.engine.URL.create("sqlite", database=str(db)))
        conn = sqlite3.connect(db)
        try:
            path.write_text(dump_head(conn), encoding="utf-8")
        finally:
            conn.close()
