"""A new UI database of the built-in project in one transaction, without ``migrate``.

``ui_head.sql`` is what Django's ``migrate`` makes of an empty SQLite database
with this project's apps (admin, auth, contenttypes, sessions, axes, SauCI's
own): the tables, the ``django_migrations`` rows, the content types and
permissions its ``post_migrate`` handlers add.
``migrate`` on a new database imports every app's migrations, builds their
graph and applies about thirty of them (0.2-0.3 s on the first ``sauci
serve``); running the dump is a few milliseconds.

It is used only for a database with no table yet, and only when the
migrations it records are exactly those on disk (the same Django, axes and
SauCI): otherwise the transaction rolls back and ``migrate`` runs as before.
tests/django/test_ui_head.py fails when the file is not what ``migrate``
makes with the installed versions, and says how to write it again
(``sauci.contrib.django.project.ui_head_write``).
"""

from __future__ import annotations

import datetime
import sqlite3
from pathlib import Path

from sauci.storage.migrations.sqlite_head import head_statements

__all__ = ["APPLIED", "HEAD_SQL", "create_ui_head"]

HEAD_SQL = Path(__file__).with_name("ui_head.sql")

# The dump does not keep when it was made; a new database records its own time.
APPLIED = "1970-01-01 00:00:00"


def _on_disk() -> set[tuple[str, str]]:
    """(app label, migration name) of every migration of the installed apps."""
    from django.apps import apps

    from sauci.contrib.django.project.migrations_due import names_on_disk

    found: set[tuple[str, str]] = set()
    for config in apps.get_app_configs():
        directory = Path(config.path) / "migrations"
        if directory.is_dir():
            found |= {(config.label, name) for name in names_on_disk(directory)}
    return found


def create_ui_head(path: Path) -> bool:
    """Make the UI database at ``path`` from the dump when it has no table yet
    and the dump's migrations are those on disk (True); else leave it to
    ``migrate`` (False). Django must be set up (its apps are read).

    The dump is read and the migrations listed only once the database is
    found empty: every restart asks, and a restart's database has tables."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            if conn.execute("SELECT name FROM sqlite_master LIMIT 1").fetchall():
                conn.execute("ROLLBACK")
                return False
            wanted = _on_disk()
            for statement in head_statements(HEAD_SQL.read_text(encoding="utf-8")):
                conn.execute(statement)
            recorded = set(conn.execute("SELECT app, name FROM django_migrations").fetchall())
            if recorded != wanted:  # other versions of Django, axes or SauCI
                conn.execute("ROLLBACK")
                return False
            now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
            conn.execute("UPDATE django_migrations SET applied = ?", (now,))
            conn.execute("COMMIT")
            return True
        except sqlite3.Error:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            return False
    finally:
        conn.close()
