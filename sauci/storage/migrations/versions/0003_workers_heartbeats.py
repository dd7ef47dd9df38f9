"""Distributed runs: worker records, and each build's runs_on labels, attempt
number and owner's heartbeat. Logs kept in files by the embedded store.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from sauci.storage.migrations._columns import add_columns, drop_columns

revision: str = "0003"
down_revision: str | None = "0002"


def upgrade() -> None:
    # Server defaults give the builds already recorded their values: no
    # labels asked for, first attempt, no heartbeat yet.
    add_columns(
        "builds",
        sa.Column("runs_on", sa.Text, nullable=False, server_default="[]"),
        sa.Column("attempt", sa.Integer, nullable=False, server_default="1"),
        sa.Column("heartbeat_at", sa.Double),
    )
    op.create_table(
        "workers",
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("host", sa.Text, nullable=False, server_default=""),
        sa.Column("labels", sa.Text, nullable=False, server_default="[]"),
        sa.Column("slots", sa.Integer, nullable=False, server_default="1"),
        sa.Column("running", sa.Text, nullable=False, server_default="[]"),
        sa.Column("started_at", sa.Double, nullable=False, server_default="0"),
        sa.Column("heartbeat_at", sa.Double, nullable=False, server_default="0"),
        sa.Column("state", sa.Text, nullable=False, server_default="online"),
        sa.PrimaryKeyConstraint("name", name="pk_workers"),
    )
    op.create_table(
        "log_files",
        sa.Column("build_id", sa.Integer, nullable=False),
        sa.Column("step", sa.Text, nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("start", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("size", sa.BigInteger, nullable=False, server_default="0"),
        sa.ForeignKeyConstraint(
            ["build_id"],
            ["builds.id"],
            name="fk_log_files_build_id_builds",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("build_id", "step", name="pk_log_files"),
    )


def downgrade() -> None:
    op.drop_table("log_files")
    op.drop_table("workers")
    drop_columns("builds", "heartbeat_at", "attempt", "runs_on")
