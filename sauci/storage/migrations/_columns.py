"""Columns added to a table that already holds rows, and dropped again on the
way down: what migrations 0002, 0003, 0005 and 0007 do to ``builds`` and
``workers``, written once.

Batch mode, because SQLite cannot ALTER a table in place for every change; a
server default gives the rows already there their value. Loaded with the
migrations by alembic, never by a store.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from alembic import op

__all__ = ["add_columns", "column_migration", "drop_columns"]


def add_columns(table: str, *columns: sa.Column[Any]) -> None:
    """Add ``columns`` to ``table``, in this order."""
    with op.batch_alter_table(table) as batch:
        for column in columns:
            batch.add_column(column)


def drop_columns(table: str, *names: str) -> None:
    """Drop the columns ``names`` of ``table``, in this order (the last added first)."""
    with op.batch_alter_table(table) as batch:
        for name in names:
            batch.drop_column(name)


def column_migration(
    table: str, *columns: sa.Column[Any]
) -> tuple[Callable[[], None], Callable[[], None]]:
    """``upgrade, downgrade`` of a migration that only adds ``columns`` to
    ``table``: the downgrade drops the same columns, the last added first.
    (alembic copies a column that an earlier run attached to a table, so the
    columns can be upgraded into any number of databases.)"""

    def upgrade() -> None:
        add_columns(table, *columns)

    def downgrade() -> None:
        drop_columns(table, *reversed([column.name for column in columns]))

    return upgrade, downgrade
