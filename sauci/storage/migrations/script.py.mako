"""${message}

Remember to update sauci/storage/_revision.py HEAD to this revision. A migration
that only adds columns to one table is one call:
``upgrade, downgrade = column_migration(table, *columns)``
(sauci/storage/migrations/_columns.py).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
${imports if imports else ""}

revision: str = ${repr(up_revision)}
down_revision: str | None = ${repr(down_revision)}


def upgrade() -> None:
    ${upgrades if upgrades else "pass"}


def downgrade() -> None:
    ${downgrades if downgrades else "pass"}
