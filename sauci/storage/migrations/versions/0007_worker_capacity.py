"""Workers declare their capacity (CPUs and memory) beside their slots, so that
the dispatcher places builds by their declared cost (issue "Compute the seed
asks for", item 2). 0 is "not declared": the records of workers of an older
SauCI, which are placed by their slots alone.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"


def upgrade() -> None:
    with op.batch_alter_table("workers") as batch:
        batch.add_column(sa.Column("cpus", sa.Double, nullable=False, server_default="0"))
        batch.add_column(sa.Column("memory", sa.BigInteger, nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("workers") as batch:
        batch.drop_column("memory")
        batch.drop_column("cpus")
