"""Registered repositories, webhook deliveries, cancel requests and reruns of failed steps."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"


def upgrade() -> None:
    # batch mode: SQLite cannot ALTER a table in place for every change.
    with op.batch_alter_table("builds") as batch:
        batch.add_column(sa.Column("reuse_from", sa.Integer))
        batch.add_column(sa.Column("cancel_requested", sa.Text))
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
    with op.batch_alter_table("builds") as batch:
        batch.drop_column("cancel_requested")
        batch.drop_column("reuse_from")
