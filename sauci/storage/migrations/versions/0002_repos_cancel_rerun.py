"""Registered repositories, webhook deliveries, cancel requests and reruns of failed steps."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from sauci.storage.migrations._columns import add_columns, drop_columns

revision: str = "0002"
down_revision: str | None = "0001"


def upgrade() -> None:
    add_columns(
        "builds", sa.Column("reuse_from", sa.Integer), sa.Column("cancel_requested", sa.Text)
    )
    op.create_table(
        "repos",
        sa.Column("id", sa.Text, nullable=False),
        sa.Column("location", sa.Text, nullable=False),
        sa.Column("hook", sa.Text, nullable=False, server_default="none"),
        sa.Column("poll_interval", sa.Double),
        sa.Column("added_at", sa.Double, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_repos"),
    )
    op.create_table(
        "deliveries",
        sa.Column("id", sa.Text, nullable=False),
        sa.Column("at", sa.Double, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_deliveries"),
    )


def downgrade() -> None:
    op.drop_table("deliveries")
    op.drop_table("repos")
    drop_columns("builds", "cancel_requested", "reuse_from")
