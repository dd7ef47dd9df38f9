"""Free-text search over builds by the database's own index, so that finding a
build by a piece of its commit message, author, branch or SHA reads an index,
not every row (issue "Results pages for daily use", item 4's search).

- SQLite: ``builds_search``, an FTS5 table with the trigram tokenizer (any
  substring of 3 characters or more, case folded) over ``builds``' message,
  author, ref and sha, kept current by triggers on ``builds``. Only where the
  SQLite library has FTS5 and trigram (3.34+); elsewhere the store keeps its
  scan. A later migration that rebuilds ``builds`` in batch mode drops these
  triggers with the old table and must make them again (``_triggers``).
- PostgreSQL: pg_trgm GIN indexes on ``lower(message)``, ``lower(author)``,
  ``lower(ref)`` and ``lower(sha)``, which the store's ``LOWER(col) LIKE``
  already reads. Only where pg_trgm can be installed; elsewhere the scan.

These objects are not in ``schema.py`` (SQLAlchemy has no FTS5 table and no
operator-class index that both dialects share); ``SEARCH_OBJECTS`` there names
their prefix, which the alembic environment leaves out of ``alembic check``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"

_COLS = ("message", "author", "ref", "sha")


def _fts5_trigram(conn: sa.engine.Connection) -> bool:
    version = str(conn.exec_driver_sql("SELECT sqlite_version()").scalar())
    if tuple(int(p) for p in version.split(".")[:2]) < (3, 34):
        return False
    options = {str(r[0]) for r in conn.exec_driver_sql("PRAGMA compile_options")}
    return "ENABLE_FTS5" in options


def _triggers() -> None:
    """The triggers that keep ``builds_search`` equal to ``builds``."""
    cols = ", ".join(_COLS)
    new = ", ".join(f"new.{c}" for c in _COLS)
    old = ", ".join(f"old.{c}" for c in _COLS)
    insert = f"INSERT INTO builds_search (rowid, {cols}) VALUES (new.id, {new});"
    delete = (
        f"INSERT INTO builds_search (builds_search, rowid, {cols})"
        f" VALUES ('delete', old.id, {old});"
    )
    op.execute(f"CREATE TRIGGER builds_search_ai AFTER INSERT ON builds BEGIN {insert} END")
    op.execute(f"CREATE TRIGGER builds_search_ad AFTER DELETE ON builds BEGIN {delete} END")
    op.execute(
        f"CREATE TRIGGER builds_search_au AFTER UPDATE OF {cols} ON builds"
        f" BEGIN {delete} {insert} END"
    )


def _pg_trgm(conn: sa.engine.Connection) -> bool:
    installed = conn.exec_driver_sql(
        "SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'"
    ).scalar()
    if installed:
        return True
    available = conn.exec_driver_sql(
        "SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'"
    ).scalar()
    if not available:
        return False
    # Trusted since PostgreSQL 13: the database's owner may create it.
    allowed = conn.exec_driver_sql(
        "SELECT rolsuper OR pg_catalog.has_database_privilege(current_database(), 'CREATE')"
        " FROM pg_roles WHERE rolname = current_user"
    ).scalar()
    if not allowed:
        return False
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    return True


def upgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name == "sqlite" and _fts5_trigram(conn):
        op.execute(
            f"CREATE VIRTUAL TABLE builds_search USING fts5({', '.join(_COLS)},"
            " content='builds', content_rowid='id', tokenize='trigram')"
        )
        _triggers()
        op.execute("INSERT INTO builds_search (builds_search) VALUES ('rebuild')")
    elif conn.dialect.name == "postgresql" and _pg_trgm(conn):
        for col in _COLS:
            op.execute(
                f"CREATE INDEX IF NOT EXISTS ix_builds_search_{col} ON builds"
                f" USING gin (lower({col}) gin_trgm_ops)"
            )


def downgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name == "sqlite":
        for suffix in ("ai", "ad", "au"):
            op.execute(f"DROP TRIGGER IF EXISTS builds_search_{suffix}")
        op.execute("DROP TABLE IF EXISTS builds_search")
    elif conn.dialect.name == "postgresql":
        for col in _COLS:
            op.execute(f"DROP INDEX IF EXISTS ix_builds_search_{col}")
