"""SQLiteStore: the embedded default store, on stdlib sqlite3.

It runs the shared SQL of ``_sql.py`` on plain sqlite3 connections and never
imports SQLAlchemy or alembic on its normal path (``import sqlalchemy`` alone
costs about 150 ms, more than ``sauci run`` may take). A new database gets
the head schema from ``migrations/sqlite_head.sql`` in one transaction; only
one behind the head revision is migrated with alembic, once.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from sauci._logging import get_logger
from sauci.exceptions import ConfigError, StoreError
from sauci.storage._log_files import LogFilesSQL
from sauci.storage._revision import HEAD
from sauci.storage._sql import SQLStoreBase
from sauci.storage._sql_contract import ConflictError, Row
from sauci.storage.migrations.sqlite_head import create_head

__all__ = ["SQLiteStore"]

log = get_logger(__name__)

# RETURNING arrived in SQLite 3.35; upsert (ON CONFLICT DO UPDATE) in 3.24.
_HAS_RETURNING = sqlite3.sqlite_version_info >= (3, 35, 0)
_MIN_VERSION = (3, 24, 0)
# Idle connections kept for reuse; busier moments open more and close them after.
_MAX_IDLE = 8
_UNIQUE_CODES = frozenset(
    {
        getattr(sqlite3, "SQLITE_CONSTRAINT_UNIQUE", 2067),
        getattr(sqlite3, "SQLITE_CONSTRAINT_PRIMARYKEY", 1555),
    }
)


def path_from_url(url: str) -> str:
    """The file of a ``sqlite:///path`` URL (SQLAlchemy's convention: three
    slashes then a relative path, four for an absolute one) or a bare path."""
    if url.startswith("sqlite:///"):
        return url[len("sqlite:///") :]
    if url.startswith("sqlite:"):
        raise ConfigError(
            f"cannot read SQLite URL {url!r}: expected sqlite:///relative/path.db or "
            "sqlite:////absolute/path.db (use memory:// for a store in memory)"
        )
    return url


class _Transaction:
    __slots__ = ("_conn", "lastrowid")

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self.lastrowid: int | None = None

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> int:
        cur = self._conn.execute(sql, params or {})
        self.lastrowid = cur.lastrowid
        return cur.rowcount

    def executemany(self, sql: str, rows: Sequence[Mapping[str, Any]]) -> None:
        self._conn.executemany(sql, rows)

    def fetchall(self, sql: str, params: Mapping[str, Any] | None = None) -> list[Row]:
        # Always drain the cursor: a statement with RETURNING that is not run
        # to completion keeps its transaction (and the write lock) open.
        cur = self._conn.execute(sql, params or {})
        rows = cur.fetchall()
        names = [d[0] for d in cur.description or ()]
        return [dict(zip(names, r, strict=True)) for r in rows]


class _Executor:
    """A small pool of sqlite3 connections, one per concurrent transaction.

    The runner calls the store from several threads: each transaction takes
    a connection of its own (readers run concurrently under WAL), and writers
    of this process queue on a lock rather than in SQLite's sleeping busy
    handler, which is left to arbitrate between processes.
    """

    returning = _HAS_RETURNING
    lock_clause = ""
    append_lock = ""  # BEGIN IMMEDIATE serializes every write
    like_folds_case = True  # LIKE ignores ASCII case: no LOWER() needed

    def __init__(self, path: str, timeout: float) -> None:
        self.path = path
        self._timeout = timeout
        self._idle: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._closed = False
        self._wal_checked = False

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, timeout=self._timeout, isolation_level=None, check_same_thread=False
        )
        try:
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA synchronous = NORMAL")  # durable at checkpoints; fine with WAL
            if not self._wal_checked:  # a property of the file: once is enough
                (mode,) = conn.execute("PRAGMA journal_mode = WAL").fetchone()
                if mode.lower() != "wal":
                    log.warning("sqlite_not_wal", path=self.path, journal_mode=mode)
                self._wal_checked = True
        except BaseException:
            conn.close()
            raise
        return conn

    def _acquire(self) -> sqlite3.Connection:
        with self._lock:
            if self._closed:
                raise StoreError(f"SQLite store {self.path} is closed")
            if self._idle:
                return self._idle.pop()
        return self._connect()

    def _release(self, conn: sqlite3.Connection, *, broken: bool) -> None:
        with self._lock:
            if not broken and not self._closed and len(self._idle) < _MAX_IDLE:
                self._idle.append(conn)
                return
        conn.close()

    @contextmanager
    def transaction(self, what: str, *, write: bool) -> Iterator[_Transaction]:
        conn: sqlite3.Connection | None = None
        broken = False
        try:
            conn = self._acquire()
            if not write:
                # Reads are single statements: each is its own snapshot.
                yield _Transaction(conn)
                return
            with self._write_lock:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield _Transaction(conn)
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
        except sqlite3.IntegrityError as exc:
            if getattr(exc, "sqlite_errorcode", None) in _UNIQUE_CODES:
                raise ConflictError(f"{what} failed: {exc}") from exc
            raise StoreError(f"{what} failed: {exc}") from exc
        except sqlite3.Error as exc:
            broken = True
            raise StoreError(f"{what} failed on SQLite database {self.path}: {exc}") from exc
        finally:
            if conn is not None:
                self._release(conn, broken=broken)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


class SQLiteStore(LogFilesSQL, SQLStoreBase):
    """A Store in one SQLite file: durable, shared safely by threads and processes.

    Capability ``log_files``: a LogSink on this machine records where a step's
    log file is (``record_log_file``) instead of copying its bytes in.

    ``path`` is a file name (not ``:memory:``; use MemoryStore). A new or
    older database is migrated to the current schema when opened, unless
    ``migrate`` is false, in which case that is a StoreError. ``timeout`` is
    how long a write waits for another process's write to finish.
    """

    capabilities: frozenset[str] = frozenset({"atomic_claim", "analytics", "durable", "log_files"})

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        clock: Callable[[], float] = time.time,
        timeout: float = 5.0,
        migrate: bool = True,
    ) -> None:
        super().__init__(clock=clock)
        path = os.fspath(path)
        if path in ("", ":memory:") or path.startswith("file:"):
            raise ConfigError(
                f"SQLiteStore needs a file name, not {path!r}; use MemoryStore "
                "(memory://) for a store in memory"
            )
        if sqlite3.sqlite_version_info < _MIN_VERSION:
            raise StoreError(
                f"SQLite {sqlite3.sqlite_version} is too old; SauCI needs 3.24 or newer"
            )
        self.path = path
        self._open(_Executor(path, timeout), migrate)

    @classmethod
    def from_url(cls, url: str) -> SQLiteStore:
        """``sqlite:///relative.db``, ``sqlite:////absolute.db`` or a bare path."""
        return cls(path_from_url(url))

    def __repr__(self) -> str:
        return f"SQLiteStore({self.path!r})"

    def _schema_revision(self) -> str | None:
        with self._db.transaction(f"read schema revision of {self.path}", write=False) as tx:
            if not tx.fetchall(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'"
            ):
                return None
            rows = tx.fetchall("SELECT version_num FROM alembic_version")
        return rows[0]["version_num"] if rows else None

    def _create_head(self) -> bool:
        """A database with no table yet: the head schema at once, with sqlite3
        alone. False when it has tables not at head, or SQLite refuses a statement."""
        try:
            with self._db.transaction(f"create the schema of {self.path}", write=True) as tx:
                created = create_head(tx)
        except StoreError as exc:  # e.g. no FTS5 trigram here: the migrations know
            log.debug("sqlite_store_head_refused", path=self.path, error=str(exc))
            return False
        if created:
            log.info("store_schema_created", path=self.path, revision=HEAD)
            return True
        return self._schema_revision() == HEAD  # another process made it meanwhile

    def _ensure_schema(self, migrate: bool) -> None:
        revision = self._schema_revision()  # the fast path: one or two tiny queries
        if revision == HEAD:
            return
        if not migrate:
            raise StoreError(
                f"SQLite database {self.path} is at schema revision {revision}, this SauCI "
                f"needs {HEAD}; open it with migrate=True or run "
                "sauci.storage.migrations.upgrade()"
            )
        self._migrate(revision)

    def _migrate(self, revision: str | None) -> None:
        if revision is None and self._create_head():
            return
        # The slow path, once per database: SQLAlchemy and alembic.
        import sqlalchemy as sa
        from alembic.util import CommandError

        from sauci.storage.migrations import upgrade

        log.debug("sqlite_store_migrating", path=self.path, from_revision=revision, to=HEAD)
        try:
            upgrade(sa.engine.URL.create("sqlite", database=self.path))
        except (sa.exc.SQLAlchemyError, CommandError) as exc:
            raise StoreError(
                f"cannot migrate SQLite database {self.path} from schema revision "
                f"{revision} to {HEAD} (a database written by a newer SauCI?): {exc}"
            ) from exc
