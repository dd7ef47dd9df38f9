"""SQLAlchemyStore: the shared SQL of ``_sql.py`` on an SQLAlchemy Engine.

Made for PostgreSQL (the store of a Django site or of several workers) and
tested on PostgreSQL and SQLite; any SQLAlchemy URL whose database speaks the
same SQL (RETURNING, ON CONFLICT) may work. Connections are checked with a
ping before use, so the store recovers by itself after a database restart.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event, exc
from sqlalchemy.engine import Connection, Engine

from sauci._logging import get_logger
from sauci.exceptions import MissingDependencyError, StoreError
from sauci.storage._revision import HEAD
from sauci.storage._sql import SQLStoreBase
from sauci.storage._sql_contract import ConflictError, Row

__all__ = ["SQLAlchemyStore"]

log = get_logger(__name__)

_UNIQUE_VIOLATION = "23505"  # PostgreSQL SQLSTATE


def normalize_url(url: str | sa.engine.URL) -> sa.engine.URL:
    """Parse a URL; plain ``postgresql://`` and ``postgres://`` mean psycopg 3,
    the driver of the ``postgres`` extra (SQLAlchemy's default is psycopg2)."""
    parsed = sa.engine.make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


class _Transaction:
    __slots__ = ("_conn", "_last")

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._last: sa.CursorResult[Any] | None = None

    @property
    def lastrowid(self) -> int | None:
        # Read only when asked: psycopg cursors have no lastrowid at all.
        return None if self._last is None else self._last.lastrowid

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> int:
        self._last = self._conn.execute(_text(sql), params or {})
        return self._last.rowcount

    def executemany(self, sql: str, rows: Sequence[Mapping[str, Any]]) -> None:
        self._conn.execute(_text(sql), list(rows))

    def fetchall(self, sql: str, params: Mapping[str, Any] | None = None) -> list[Row]:
        result = self._conn.execute(_text(sql), params or {})
        return [dict(r) for r in result.mappings()]


_TEXTS: dict[str, sa.TextClause] = {}


def _text(sql: str) -> sa.TextClause:
    # text() parses the statement for :params each time; the set of
    # statements is small and fixed, so keep them.
    clause = _TEXTS.get(sql)
    if clause is None:
        clause = _TEXTS[sql] = sa.text(sql)
    return clause


class _Executor:
    def __init__(self, engine: Engine, *, owned: bool) -> None:
        self.engine = engine
        self._owned = owned
        dialect = engine.dialect
        self._sqlite = dialect.name == "sqlite"
        self.like_folds_case = self._sqlite  # SQLite's LIKE ignores ASCII case
        self.returning = bool(dialect.insert_returning and dialect.update_returning)
        # Concurrent claimers skip a row another one has locked instead of
        # waiting for it and then finding it taken.
        self.lock_clause = " FOR UPDATE SKIP LOCKED" if dialect.name == "postgresql" else ""
        # Appends to one log wait for each other (released at commit), so the
        # next one sees the chunk before it; other logs are not held up.
        self.append_lock = (
            "SELECT pg_advisory_xact_lock(CAST(:build_id AS INTEGER), hashtext(:step))"
            if dialect.name == "postgresql"
            else ""
        )
        self.url = engine.url.render_as_string(hide_password=True)

    @contextmanager
    def transaction(self, what: str, *, write: bool) -> Iterator[_Transaction]:
        try:
            with self.engine.connect() as conn:
                if self._sqlite:
                    # pysqlite would begin only at the first write, too late
                    # to take SQLite's write lock without risking a deadlock.
                    conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
                yield _Transaction(conn)
                conn.commit()
        except exc.IntegrityError as e:
            if getattr(e.orig, "sqlstate", None) == _UNIQUE_VIOLATION or (
                "UNIQUE constraint failed" in str(e.orig)
            ):
                raise ConflictError(f"{what} failed: {e.orig}") from e
            raise StoreError(f"{what} failed: {e.orig}") from e
        except exc.SQLAlchemyError as e:
            reason = getattr(e, "orig", None) or e
            raise StoreError(f"{what} failed on {self.url}: {reason}".strip()) from e

    def close(self) -> None:
        if self._owned:
            self.engine.dispose()


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Let the executor issue BEGIN itself, and match SQLiteStore's settings.
    dbapi_connection.isolation_level = None
    cur = dbapi_connection.cursor()
    try:
        cur.execute("PRAGMA foreign_keys = ON")
        cur.execute("PRAGMA busy_timeout = 5000")
        cur.execute("PRAGMA synchronous = NORMAL")
        cur.execute("PRAGMA journal_mode = WAL")
    finally:
        cur.close()


def make_engine(url: str | sa.engine.URL, **options: Any) -> Engine:
    """An Engine with SauCI's settings (pre-ping; SQLite pragmas)."""
    parsed = normalize_url(url)
    options.setdefault("pool_pre_ping", True)
    try:
        engine = sa.create_engine(parsed, **options)
    except ModuleNotFoundError as e:
        if parsed.get_backend_name() == "postgresql":
            raise MissingDependencyError(e.name or "psycopg", "postgres") from e
        raise
    except exc.ArgumentError as e:
        raise StoreError(f"cannot use database URL {parsed!r}: {e}") from e
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_on_connect)
    return engine


class SQLAlchemyStore(SQLStoreBase):
    """A Store on any SQLAlchemy URL or Engine; PostgreSQL is the main target.

    Given a URL the store makes (and on ``close`` disposes of) its own Engine
    with ``pool_pre_ping``; ``engine_options`` go to ``create_engine``. Given
    an Engine it uses it and leaves it open. A database without the schema or
    behind the head revision is migrated when opened, unless ``migrate`` is
    false, in which case that is a StoreError.
    """

    def __init__(
        self,
        url: str | sa.engine.URL | Engine,
        *,
        clock: Callable[[], float] = time.time,
        migrate: bool = True,
        **engine_options: Any,
    ) -> None:
        super().__init__(clock=clock)
        if isinstance(url, Engine):
            engine, owned = url, False
        else:
            engine, owned = make_engine(url, **engine_options), True
        self.engine = engine
        self._url = engine.url.render_as_string(hide_password=True)
        self._open(_Executor(engine, owned=owned), migrate)

    @classmethod
    def from_url(cls, url: str) -> SQLAlchemyStore:
        """Any SQLAlchemy URL, optionally prefixed with ``sqlalchemy+``."""
        return cls(url.removeprefix("sqlalchemy+"))

    def __repr__(self) -> str:
        return f"SQLAlchemyStore({self._url!r})"

    def _ensure_schema(self, migrate: bool) -> None:
        from alembic.util import CommandError

        from sauci.storage.migrations import current_revision, upgrade

        what = f"check the schema of {self._url}"
        try:
            with self.engine.connect() as conn:
                revision = current_revision(conn)
            if revision == HEAD:
                return
            if not migrate:
                raise StoreError(
                    f"database {self._url} is at schema revision {revision}, this SauCI "
                    f"needs {HEAD}; open it with migrate=True or run "
                    "sauci.storage.migrations.upgrade()"
                )
            log.debug("store_migrating", url=self._url, from_revision=revision, to=HEAD)
            upgrade(self.engine)
        except exc.SQLAlchemyError as e:
            raise StoreError(f"{what} failed: {getattr(e, 'orig', None) or e}") from e
        except CommandError as e:  # e.g. an unknown revision
            raise StoreError(
                f"cannot migrate {self._url} to schema revision {HEAD} "
                f"(a database written by a newer SauCI?): {e}"
            ) from e
