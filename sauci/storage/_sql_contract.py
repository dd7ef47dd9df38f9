"""What the shared SQL needs from a database driver: an executor of
transactions whose queries give rows by column name (never by position), and
the small helpers every SQL module shares. Stdlib only: the embedded store
imports it on ``sauci run``'s start-up path.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from sauci.exceptions import StoreError

__all__ = [
    "ConflictError",
    "Executor",
    "Row",
    "Transaction",
    "fetchone",
    "like_pattern",
    "to_json",
    "upsert_sql",
]

# A row of a query, by column name (or the alias the query gives it).
Row = Mapping[str, Any]


class ConflictError(StoreError):
    """A write lost a race on a unique key (executors raise it; callers may retry)."""


class Transaction(Protocol):
    """One open transaction of an executor."""

    @property
    def lastrowid(self) -> int | None:
        """The id of the last inserted row (used only where RETURNING is missing)."""

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> int:
        """Run a statement; returns the number of rows it changed."""

    def executemany(self, sql: str, rows: Sequence[Mapping[str, Any]]) -> None:
        """Run a statement once per parameter set."""

    def fetchall(self, sql: str, params: Mapping[str, Any] | None = None) -> list[Row]:
        """Run a query (or a statement with RETURNING); every row, by column name."""


class Executor(Protocol):
    """What SQLStoreBase needs from a back end: transactions, and a close.

    ``transaction`` commits when its block ends normally and rolls back on
    any exception; it translates the back end's exceptions into StoreError
    (ConflictError for a unique-key violation) whose message starts with
    ``what``.
    """

    returning: bool  # INSERT/UPDATE ... RETURNING works
    lock_clause: str  # appended to the claim's subquery, e.g. " FOR UPDATE SKIP LOCKED"
    # Run before an append, in its transaction, to serialize appends to one
    # log (:build_id, :step) where writers are not serialized anyway; or "".
    append_lock: str

    def transaction(self, what: str, *, write: bool) -> AbstractContextManager[Transaction]: ...

    def close(self) -> None: ...


def upsert_sql(table: str, columns: Sequence[str], keys: int = 1) -> str:
    """``INSERT`` of ``columns`` (bound by name) into ``table`` that updates
    the row whose first ``keys`` columns (its unique key) are the same."""
    names = ", ".join(columns)
    values = ", ".join(f":{c}" for c in columns)
    update = ", ".join(f"{c} = excluded.{c}" for c in columns[keys:])
    key = ", ".join(columns[:keys])
    return (
        f"INSERT INTO {table} ({names}) VALUES ({values})"
        f" ON CONFLICT ({key}) DO UPDATE SET {update}"
    )


def like_pattern(text: str) -> str:
    """A LIKE pattern (with ``ESCAPE '\\'``) for ``text`` lowered, anywhere in a value."""
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def fetchone(tx: Transaction, sql: str, params: Mapping[str, Any] | None = None) -> Row | None:
    """The first row of a query, or None."""
    rows = tx.fetchall(sql, params)
    return rows[0] if rows else None


def to_json(value: Any) -> str:
    """Compact JSON with sorted keys, as the text columns keep it."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True)
