"""The initial schema: builds, steps, log chunks, test results, artifacts, events.

Written out in full rather than imported from sauci.storage.schema: a
migration is a snapshot and must not change when the schema module does.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None


def _id() -> sa.Column:
    return sa.Column("id", sa.Integer, sa.Identity(), nullable=False)


def _build_fk(table: str) -> list:
    return [
        sa.Column("build_id", sa.Integer, nullable=False),
        sa.ForeignKeyConstraint(
            ["build_id"], ["builds.id"], name=f"fk_{table}_build_id_builds", ondelete="CASCADE"
        ),
    ]


def upgrade() -> None:
    op.create_table(
        "builds",
        _id(),
        sa.Column("repo", sa.Text, nullable=False),
        sa.Column("ref", sa.Text, nullable=False, server_default=""),
        sa.Column("sha", sa.Text, nullable=False, server_default=""),
        sa.Column("event", sa.Text, nullable=False, server_default="manual"),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("priority", sa.Integer, nullable=False, server_default="0"),
        sa.Column("params", sa.Text, nullable=False, server_default="{}"),
        sa.Column("author", sa.Text, nullable=False, server_default=""),
        sa.Column("message", sa.Text, nullable=False, server_default=""),
        sa.Column("pusher", sa.Text, nullable=False, server_default=""),
        sa.Column("old_sha", sa.Text, nullable=False, server_default=""),
        sa.Column("queued_at", sa.Double, nullable=False),
        sa.Column("started_at", sa.Double),
        sa.Column("finished_at", sa.Double),
        sa.Column("claimed_by", sa.Text),
        sa.PrimaryKeyConstraint("id", name="pk_builds"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_builds_repo_id", "builds", ["repo", "id"])
    op.create_index(
        "ix_builds_status_priority_id", "builds", ["status", sa.text("priority DESC"), "id"]
    )
    op.create_index("ix_builds_ref", "builds", ["ref"])

    op.create_table(
        "steps",
        *_build_fk("steps"),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("position", sa.Integer, nullable=False, server_default="0"),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("ended_by", sa.Text),
        sa.Column("exit_code", sa.Integer),
        sa.Column("signal", sa.Integer),
        sa.Column("attempt", sa.Integer, nullable=False, server_default="0"),
        sa.Column("allow_failure", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("needs", sa.Text, nullable=False, server_default="[]"),
        sa.Column("started_at", sa.Double),
        sa.Column("finished_at", sa.Double),
        sa.Column("log_bytes", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("log_path", sa.Text),
        sa.PrimaryKeyConstraint("build_id", "name", name="pk_steps"),
    )
    op.create_index("ix_steps_build_id_position", "steps", ["build_id", "position"])

    op.create_table(
        "log_chunks",
        *_build_fk("log_chunks"),
        sa.Column("step", sa.Text, nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("offset", sa.BigInteger, nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.PrimaryKeyConstraint("build_id", "step", "seq", name="pk_log_chunks"),
    )
    op.create_index(
        "ix_log_chunks_build_id_step_offset",
        "log_chunks",
        ["build_id", "step", "offset"],
        unique=True,
    )

    op.create_table(
        "test_results",
        _id(),
        *_build_fk("test_results"),
        sa.Column("step", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("classname", sa.Text, nullable=False, server_default=""),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("duration", sa.Double, nullable=False, server_default="0"),
        sa.Column("message", sa.Text, nullable=False, server_default=""),
        sa.Column("text", sa.Text, nullable=False, server_default=""),
        sa.Column("file", sa.Text, nullable=False, server_default=""),
        sa.PrimaryKeyConstraint("id", name="pk_test_results"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_test_results_build_id_id", "test_results", ["build_id", "id"])

    op.create_table(
        "artifacts",
        _id(),
        *_build_fk("artifacts"),
        sa.Column("step", sa.Text, nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("sha256", sa.Text, nullable=False, server_default=""),
        sa.PrimaryKeyConstraint("id", name="pk_artifacts"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_artifacts_build_id_id", "artifacts", ["build_id", "id"])

    op.create_table(
        "events",
        _id(),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("at", sa.Double, nullable=False),
        sa.Column("build_id", sa.Integer),
        sa.Column("actor", sa.Text, nullable=False, server_default=""),
        sa.Column("data", sa.Text, nullable=False, server_default="{}"),
        sa.PrimaryKeyConstraint("id", name="pk_events"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_events_build_id_id", "events", ["build_id", "id"])


def downgrade() -> None:
    for table in ("events", "artifacts", "test_results", "log_chunks", "steps", "builds"):
        op.drop_table(table)
