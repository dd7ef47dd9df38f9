"""DuckDB's DDL, compiled from the tables of :mod:`sauci.storage.schema`.

SQLAlchemy has no DuckDB dialect, and DuckDB needs little of one: ids are
BIGINTs defaulting to a sequence (``<table>_id``), floats are DOUBLE, no
foreign keys and no indexes (DuckDB turns an UPDATE of an indexed row into a
delete and an insert, which its constraint checks can trip over). A file made
by an older SauCI gets the columns added since, found by comparing the tables
with ``information_schema.columns``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

from sauci.storage.schema import metadata

__all__ = ["add_missing_columns", "create_statements"]

# Most specific first: BigInteger is an Integer, Double a Float.
_TYPES: tuple[tuple[type[sa.types.TypeEngine[Any]], str], ...] = (
    (sa.Integer, "BIGINT"),
    (sa.Float, "DOUBLE"),
    (sa.Boolean, "BOOLEAN"),
    (sa.LargeBinary, "BLOB"),
    (sa.String, "VARCHAR"),
)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _type(column: sa.Column[object]) -> str:
    for kind, name in _TYPES:
        if isinstance(column.type, kind):
            return name
    raise TypeError(f"no DuckDB type for {column.table.name}.{column.name}: {column.type!r}")


def _default(column: sa.Column[object]) -> str | None:
    if isinstance(column.identity, sa.Identity):
        return f"nextval('{column.table.name}_id')"
    default = column.server_default
    if default is None:
        return None
    arg = default.arg  # type: ignore[attr-defined]
    if not isinstance(arg, str):  # an expression such as sa.false()
        return str(arg.compile(compile_kwargs={"literal_binds": True}))
    if isinstance(column.type, sa.Integer | sa.Float):
        return str(float(arg) if isinstance(column.type, sa.Float) else int(arg))
    return "'" + arg.replace("'", "''") + "'"


def _column(column: sa.Column[object], *, inline_key: bool, constraints: bool = True) -> str:
    parts = [_quote(column.name), _type(column)]
    if inline_key:
        parts.append("PRIMARY KEY")
    default = _default(column)
    if default is not None:
        parts.append(f"DEFAULT {default}")
    # DuckDB cannot add a column with a constraint to an existing table.
    if constraints and not column.nullable and not inline_key:
        parts.append("NOT NULL")
    return " ".join(parts)


def create_statements() -> list[str]:
    """``CREATE SEQUENCE`` and ``CREATE TABLE ... IF NOT EXISTS`` for every table."""
    out: list[str] = []
    for table in metadata.sorted_tables:
        key = [c.name for c in table.primary_key.columns]
        single = key[0] if len(key) == 1 else None
        lines = [_column(c, inline_key=c.name == single) for c in table.columns]
        if single is None and key:
            lines.append(f"PRIMARY KEY ({', '.join(map(_quote, key))})")
        if any(isinstance(c.identity, sa.Identity) for c in table.columns):
            out.append(f"CREATE SEQUENCE IF NOT EXISTS {table.name}_id")
        out.append(f"CREATE TABLE IF NOT EXISTS {_quote(table.name)} ({', '.join(lines)})")
    return out


def add_missing_columns(existing: Iterable[tuple[str, str]]) -> list[str]:
    """``ALTER TABLE ... ADD COLUMN`` for each column of the tables that is not
    among ``existing`` (``(table, column)`` pairs, as information_schema has them)."""
    have = set(existing)
    return [
        f"ALTER TABLE {_quote(table.name)} ADD COLUMN "
        + _column(column, inline_key=False, constraints=False)
        for table in metadata.sorted_tables
        for column in table.columns
        if (table.name, column.name) not in have
    ]
