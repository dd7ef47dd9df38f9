"""DuckDBStore: the column store. The portable SQL of ``_sql.py`` runs on an
embedded DuckDB file, with tables compiled from :mod:`sauci.storage.schema`
(``_duckdb_ddl``); aggregates over long history (``build_stats``,
``duration_trend``) are vectorized scans, while keyed UI queries stay cheap.

DuckDB allows one writing process per file, and its optimistic transactions
conflict when two connections change one row: so one connection, and a lock
around every transaction (the store is called from several threads).
"""

from __future__ import annotations

import functools
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sauci.exceptions import MissingDependencyError, StoreError
from sauci.storage._duckdb_ddl import add_missing_columns, create_statements
from sauci.storage._sql import SQLStoreBase
from sauci.storage._sql_contract import ConflictError, Row

__all__ = ["DuckDBStore"]

# ":name" parameters of _sql.py become DuckDB's "$name"; the column "at"
# (events, deliveries) is a keyword in DuckDB and gets quotes.
_PARAM = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")
_AT = re.compile(r'(?<![$\w"])at(?![\w"])')


@functools.lru_cache(maxsize=256)
def _sql(sql: str) -> str:
    return _AT.sub('"at"', _PARAM.sub(r"$\1", sql))


class _Transaction:
    lastrowid = None  # never needed: DuckDB has RETURNING

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> int:
        rows = self._conn.execute(_sql(sql), dict(params or {})).fetchall()
        # DML answers with one row holding the number of changed rows.
        return int(rows[0][0]) if rows and rows[0] and isinstance(rows[0][0], int) else 0

    def executemany(self, sql: str, rows: Sequence[Mapping[str, Any]]) -> None:
        self._conn.executemany(_sql(sql), [dict(r) for r in rows])

    def fetchall(self, sql: str, params: Mapping[str, Any] | None = None) -> list[Row]:
        cur = self._conn.execute(_sql(sql), dict(params or {}))
        rows = cur.fetchall()
        names = [d[0] for d in cur.description or ()]
        return [dict(zip(names, r, strict=True)) for r in rows]


def _held_elsewhere(path: str, error: str) -> str:
    """What to do when another process holds the DuckDB file (DuckDB lets one
    process open a file for writing, and no other process even read it then)."""
    match = re.search(r"PID (\d+)", error)
    holder = "another process"
    if match:
        pid = match.group(1)
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            words = [Path(a.decode(errors="replace")).name for a in argv if a][:4]
            holder = f"`{' '.join(words)}` (pid {pid})"
        except OSError:
            holder = f"process {pid}"
    return (
        f"the DuckDB store {path} is open in {holder}: DuckDB lets one process use a "
        "file, and no other process read it meanwhile. Read the builds in that "
        "server's web UI, stop it first, or keep the store where several processes "
        "can share it (SQLite or PostgreSQL, then `sauci store copy`)"
    )


class _Executor:
    returning = True
    lock_clause = ""
    append_lock = ""  # the lock below serializes every transaction

    def __init__(self, path: str) -> None:
        try:
            import duckdb
        except ImportError as exc:
            raise MissingDependencyError("duckdb", "duckdb") from exc
        self._duckdb = duckdb
        self.path = path
        self._lock = threading.RLock()
        try:
            self._conn: Any = duckdb.connect(path)
            for statement in create_statements():
                self._conn.execute(statement)
            existing = self._conn.execute(
                "SELECT table_name, column_name FROM information_schema.columns"
                " WHERE table_schema = current_schema()"
            ).fetchall()
            for statement in add_missing_columns(existing):
                self._conn.execute(statement)
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower():
                raise StoreError(f"open DuckDB store {path}: {exc}") from exc
            raise StoreError(_held_elsewhere(path, str(exc))) from exc
        except duckdb.Error as exc:
            raise StoreError(f"open DuckDB store {path}: {exc}") from exc

    @contextmanager
    def transaction(self, what: str, *, write: bool) -> Iterator[_Transaction]:
        duckdb = self._duckdb
        with self._lock:
            if self._conn is None:
                raise StoreError(f"{what}: DuckDB store {self.path} is closed")
            try:
                self._conn.begin()
                try:
                    yield _Transaction(self._conn)
                except BaseException:
                    self._conn.rollback()
                    raise
                self._conn.commit()
            except duckdb.ConstraintException as exc:
                raise ConflictError(f"{what}: {exc}") from exc
            except duckdb.Error as exc:
                raise StoreError(f"{what}: DuckDB {self.path}: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


class DuckDBStore(SQLStoreBase):
    """A Store in one DuckDB file (``":memory:"`` for a throwaway one)."""

    capabilities: frozenset[str] = frozenset({"atomic_claim", "analytics", "durable"})

    def __init__(self, path: str | Path = ":memory:", *, clock: Callable[[], float] = time.time):
        super().__init__(clock=clock)
        self.path = str(path)
        self._db = _Executor(self.path)

    @classmethod
    def from_url(cls, url: str, **kw: Any) -> DuckDBStore:
        """``duckdb:///relative.duckdb``, ``duckdb:////abs/path``, ``duckdb://:memory:``."""
        rest = url.removeprefix("duckdb://")
        path = rest[1:] if rest.startswith("/") else rest
        return cls(path or ":memory:", **kw)

    def duration_trend(
        self, *, repo: str | None = None, bucket: float = 86400.0
    ) -> list[dict[str, Any]]:
        """Per time bucket (default: a day) of ``queued_at``: builds, failure
        rate and mean duration, oldest first. The column store's strength."""
        where, params = "", dict[str, Any](bucket=bucket)
        if repo is not None:
            where, params = " WHERE repo = :repo", params | {"repo": repo}
        sql = (
            'SELECT floor(queued_at / :bucket) * :bucket AS "start", COUNT(*) AS builds,'
            " AVG(CASE WHEN status = 'failed' THEN 1.0 ELSE 0.0 END) AS failure_rate,"
            " AVG(finished_at - started_at) AS mean_duration"
            f' FROM builds{where} GROUP BY "start" ORDER BY "start"'
        )
        with self._tx("compute the duration trend") as tx:
            rows = tx.fetchall(sql, params)
        return [dict(r) for r in rows]
