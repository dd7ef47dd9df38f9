"""The one storage schema, as SQLAlchemy tables.

Every SQL back end stores builds in these tables; alembic migrations in
``sauci/storage/migrations`` create and evolve them, and a test checks that
the migrations produce exactly this schema. Portable types only: integer ids,
float epoch seconds, JSON as text, log bytes as BLOB/bytea.
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = [
    "SEARCH_OBJECTS",
    "artifacts",
    "builds",
    "deliveries",
    "events",
    "log_chunks",
    "log_files",
    "metadata",
    "repos",
    "steps",
    "test_results",
    "workers",
]

# Constraint names are fixed so that later migrations can refer to them on
# every back end.
metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


def _id() -> sa.Column[int]:
    # SQLite: INTEGER PRIMARY KEY AUTOINCREMENT (ids never reused, so keyset
    # paging stays stable); PostgreSQL: an identity column.
    return sa.Column("id", sa.Integer, sa.Identity(), primary_key=True)


def _build_fk() -> sa.Column[int]:
    return sa.Column(
        "build_id",
        sa.Integer,
        sa.ForeignKey("builds.id", ondelete="CASCADE"),
        nullable=False,
    )


builds = sa.Table(
    "builds",
    metadata,
    _id(),
    sa.Column("repo", sa.Text, nullable=False),
    sa.Column("ref", sa.Text, nullable=False, server_default=""),
    sa.Column("sha", sa.Text, nullable=False, server_default=""),
    sa.Column("event", sa.Text, nullable=False, server_default="manual"),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("reason", sa.Text),
    sa.Column("priority", sa.Integer, nullable=False, server_default="0"),
    sa.Column("params", sa.Text, nullable=False, server_default="{}"),  # JSON object
    sa.Column("author", sa.Text, nullable=False, server_default=""),
    sa.Column("message", sa.Text, nullable=False, server_default=""),
    sa.Column("pusher", sa.Text, nullable=False, server_default=""),
    sa.Column("old_sha", sa.Text, nullable=False, server_default=""),
    sa.Column("queued_at", sa.Double, nullable=False),
    sa.Column("started_at", sa.Double),
    sa.Column("finished_at", sa.Double),
    sa.Column("claimed_by", sa.Text),
    sa.Column("reuse_from", sa.Integer),  # rerun failed: passed steps of this build are kept
    sa.Column("cancel_requested", sa.Text),  # the reason, once someone asked to cancel
    sa.Column("runs_on", sa.Text, nullable=False, server_default="[]"),  # JSON array of labels
    sa.Column("attempt", sa.Integer, nullable=False, server_default="1"),
    sa.Column("heartbeat_at", sa.Double),  # the owner's last sign of life
    # Unique across stores and resets: its logs' and artifacts' directory.
    # "" for builds recorded before revision 0005 (their files keep the old layout).
    sa.Column("uuid", sa.Text, nullable=False, server_default=""),
    sqlite_autoincrement=True,
)
sa.Index("ix_builds_repo_id", builds.c.repo, builds.c.id)
# Matches the claim's ORDER BY priority DESC, id ASC exactly.
sa.Index("ix_builds_status_priority_id", builds.c.status, builds.c.priority.desc(), builds.c.id)
sa.Index("ix_builds_ref", builds.c.ref)
# The free-text search's own objects (0006), which SQLAlchemy cannot describe
# on both dialects: SQLite's FTS5 table ``builds_search`` (and its shadow
# tables and triggers), PostgreSQL's pg_trgm indexes ``ix_builds_search_*``.
# Their names start with this; ``alembic check`` leaves them out.
SEARCH_OBJECTS = ("builds_search", "ix_builds_search_")


def include_name(name: str | None, type_: str, parent_names: object) -> bool:
    """alembic's ``include_name``: every object but the search's (``SEARCH_OBJECTS``)."""
    return not (name or "").startswith(SEARCH_OBJECTS)


# A repository's counts by status and mean duration from the index alone (0004).
sa.Index(
    "ix_builds_repo_status_times",
    builds.c.repo,
    builds.c.status,
    builds.c.started_at,
    builds.c.finished_at,
)

steps = sa.Table(
    "steps",
    metadata,
    _build_fk(),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("position", sa.Integer, nullable=False, server_default="0"),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("reason", sa.Text),
    sa.Column("ended_by", sa.Text),
    sa.Column("exit_code", sa.Integer),
    sa.Column("signal", sa.Integer),
    sa.Column("attempt", sa.Integer, nullable=False, server_default="0"),
    sa.Column("allow_failure", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("needs", sa.Text, nullable=False, server_default="[]"),  # JSON array
    sa.Column("started_at", sa.Double),
    sa.Column("finished_at", sa.Double),
    sa.Column("log_bytes", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("log_path", sa.Text),
    sa.PrimaryKeyConstraint("build_id", "name"),
)
sa.Index("ix_steps_build_id_position", steps.c.build_id, steps.c.position)

# One row per append_log call (the LogSink batches about 64 KiB). Chunks of a
# step are contiguous: chunk seq+1 starts where chunk seq ends, so the log's
# size is the end of the last chunk (one primary-key lookup), and read_log
# seeks to the first chunk overlapping the range through the offset index.
log_chunks = sa.Table(
    "log_chunks",
    metadata,
    _build_fk(),
    sa.Column("step", sa.Text, nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("offset", sa.BigInteger, nullable=False),
    sa.Column("size", sa.Integer, nullable=False),
    sa.Column("data", sa.LargeBinary, nullable=False),
    sa.PrimaryKeyConstraint("build_id", "step", "seq"),
)
sa.Index(
    "ix_log_chunks_build_id_step_offset",
    log_chunks.c.build_id,
    log_chunks.c.step,
    log_chunks.c.offset,
    unique=True,
)

# Logs kept in a file on the store's machine instead of in chunks (the
# embedded store's "log_files" capability): bytes start .. start + size of
# the file at path. A step's log is either chunks or a file, never both.
log_files = sa.Table(
    "log_files",
    metadata,
    _build_fk(),
    sa.Column("step", sa.Text, nullable=False),
    sa.Column("path", sa.Text, nullable=False),
    sa.Column("start", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("size", sa.BigInteger, nullable=False, server_default="0"),
    sa.PrimaryKeyConstraint("build_id", "step"),
)

test_results = sa.Table(
    "test_results",
    metadata,
    _id(),
    _build_fk(),
    sa.Column("step", sa.Text, nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("classname", sa.Text, nullable=False, server_default=""),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("duration", sa.Double, nullable=False, server_default="0"),
    sa.Column("message", sa.Text, nullable=False, server_default=""),
    sa.Column("text", sa.Text, nullable=False, server_default=""),
    sa.Column("file", sa.Text, nullable=False, server_default=""),
    sqlite_autoincrement=True,
)
sa.Index("ix_test_results_build_id_id", test_results.c.build_id, test_results.c.id)
# A page of a build's tests, failures first, and the counts by status (0004).
sa.Index(
    "ix_test_results_build_id_status_id",
    test_results.c.build_id,
    test_results.c.status,
    test_results.c.id,
)

artifacts = sa.Table(
    "artifacts",
    metadata,
    _id(),
    _build_fk(),
    sa.Column("step", sa.Text, nullable=False),
    sa.Column("path", sa.Text, nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("sha256", sa.Text, nullable=False, server_default=""),
    sqlite_autoincrement=True,
)
sa.Index("ix_artifacts_build_id_id", artifacts.c.build_id, artifacts.c.id)

# No foreign key on build_id: the audit trail outlives the builds it names.
events = sa.Table(
    "events",
    metadata,
    _id(),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("at", sa.Double, nullable=False),
    sa.Column("build_id", sa.Integer),
    sa.Column("actor", sa.Text, nullable=False, server_default=""),
    sa.Column("data", sa.Text, nullable=False, server_default="{}"),  # JSON object
    sqlite_autoincrement=True,
)
sa.Index("ix_events_build_id_id", events.c.build_id, events.c.id)

# Repositories registered with `sauci repo add`.
repos = sa.Table(
    "repos",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("location", sa.Text, nullable=False),
    sa.Column("hook", sa.Text, nullable=False, server_default="none"),
    sa.Column("poll_interval", sa.Double),
    sa.Column("added_at", sa.Double, nullable=False),
)

# Webhook delivery ids already handled, so a replayed delivery is ignored.
deliveries = sa.Table(
    "deliveries",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("at", sa.Double, nullable=False),
)

# Worker processes (`sauci worker`) as they last reported themselves.
workers = sa.Table(
    "workers",
    metadata,
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("host", sa.Text, nullable=False, server_default=""),
    sa.Column("labels", sa.Text, nullable=False, server_default="[]"),  # JSON array
    sa.Column("slots", sa.Integer, nullable=False, server_default="1"),
    sa.Column("running", sa.Text, nullable=False, server_default="[]"),  # JSON array of build ids
    sa.Column("started_at", sa.Double, nullable=False, server_default="0"),
    sa.Column("heartbeat_at", sa.Double, nullable=False, server_default="0"),
    sa.Column("state", sa.Text, nullable=False, server_default="online"),
    # Declared capacity; 0: not declared (docs/distributed.md, "Placing by cost").
    sa.Column("cpus", sa.Double, nullable=False, server_default="0"),
    sa.Column("memory", sa.BigInteger, nullable=False, server_default="0"),
)
