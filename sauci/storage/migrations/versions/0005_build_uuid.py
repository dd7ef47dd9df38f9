"""Each build's uuid: the identity its logs and artifacts are kept under, which
no other store and no reset database can give another build.

Builds recorded before keep "" and their files the old layout
(``<repo>/<id>/``); nothing on disk is moved.
"""

from __future__ import annotations

import sqlalchemy as sa

from sauci.storage.migrations._columns import column_migration

revision: str = "0005"
down_revision: str | None = "0004"


upgrade, downgrade = column_migration(
    "builds", sa.Column("uuid", sa.Text, nullable=False, server_default="")
)
