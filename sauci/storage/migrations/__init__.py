"""Alembic migrations of the storage schema, driven without an alembic.ini.

``upgrade(url_or_connection)`` brings a database to the head revision. It
imports SQLAlchemy and alembic, so stores call it only when the database is
not already at :data:`sauci.storage._revision.HEAD`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from sauci._logging import get_logger

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy.engine import Connection, Engine

__all__ = ["alembic_config", "current_revision", "head_revision", "upgrade"]

log = get_logger(__name__)

SCRIPT_LOCATION = Path(__file__).resolve().parent

# Any constant works; it only has to be the same for every SauCI process.
_PG_MIGRATION_LOCK = 0x5A0C1


def alembic_config(connection: Connection | None = None) -> Config:
    """An alembic Config for these migrations; ``connection`` is handed to env.py."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(SCRIPT_LOCATION))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    """The head revision according to the migration scripts themselves."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(connection: Connection) -> str | None:
    """The revision recorded in a database (None when it has no schema yet)."""
    from alembic.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


def upgrade(target: str | Any, revision: str = "head") -> None:
    """Migrate a database, given as a URL, an Engine or a Connection, to ``revision``.

    With a URL or an Engine the whole upgrade runs in one transaction that
    concurrent migrators wait for (SQLite: BEGIN IMMEDIATE; PostgreSQL: an
    advisory lock), so two processes opening a fresh database at once do not
    both create the tables. A Connection is used as it is, inside whatever
    transaction the caller has begun; the caller commits.
    """
    import sqlalchemy as sa
    from sqlalchemy.engine import Connection, Engine

    if isinstance(target, Connection):
        _run(target, revision)
        return
    engine: Engine
    if isinstance(target, Engine):
        engine, owned = target, False
    else:
        engine, owned = sa.create_engine(target, poolclass=sa.pool.NullPool), True
    try:
        with engine.connect() as conn:
            if engine.dialect.name == "sqlite":
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            elif engine.dialect.name == "postgresql":
                conn.execute(sa.text(f"SELECT pg_advisory_xact_lock({_PG_MIGRATION_LOCK})"))
            _run(conn, revision)
            conn.commit()
    finally:
        if owned:
            engine.dispose()


def _run(connection: Connection, revision: str) -> None:
    from alembic import command

    before = current_revision(connection)
    command.upgrade(alembic_config(connection), revision)
    after = current_revision(connection)
    if before != after:
        log.info(
            "store_schema_upgraded",
            url=connection.engine.url.render_as_string(hide_password=True),
            from_revision=before,
            to_revision=after,
        )
