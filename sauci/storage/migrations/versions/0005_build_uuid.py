"""Each build's uuid: the identity its logs and artifacts are kept under, which
no other store and no reset database can give another build.

Builds recorded before keep "" and their files the old layout
(``<repo>/<id>/``); nothing on disk is moved.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"


def upgrade() -> None:
    with op.batch_alter_table("builds") as batch:
        batch.add_column(sa.Column("uuid", sa.Text, nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("builds") as batch:
        batch.drop_column("uuid")
