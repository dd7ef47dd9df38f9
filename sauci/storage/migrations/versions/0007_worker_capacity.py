"""Workers declare their capacity (CPUs and memory) beside their slots, so that
the dispatcher places builds by their declared cost (issue "Compute the seed
asks for", item 2). 0 is "not declared": the records of workers of an older
SauCI, which are placed by their slots alone.
"""

from __future__ import annotations

import sqlalchemy as sa

from sauci.storage.migrations._columns import column_migration

revision: str = "0007"
down_revision: str | None = "0006"


upgrade, downgrade = column_migration(
    "workers",
    sa.Column("cpus", sa.Double, nullable=False, server_default="0"),
    sa.Column("memory", sa.BigInteger, nullable=False, server_default="0"),
)
