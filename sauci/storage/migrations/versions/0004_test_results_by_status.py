"""An index of test results by build and status, so that a page of a big
build's tests, failures first, and its counts by status read the index, not
every row of the build; and one of builds by repository and status with
their times, so a repository's counts by status and mean duration (the build
list, the analytics page) read only the index.
"""

from __future__ import annotations

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"


def upgrade() -> None:
    op.create_index(
        "ix_test_results_build_id_status_id", "test_results", ["build_id", "status", "id"]
    )
    op.create_index(
        "ix_builds_repo_status_times", "builds", ["repo", "status", "started_at", "finished_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_builds_repo_status_times", table_name="builds")
    op.drop_index("ix_test_results_build_id_status_id", table_name="test_results")
