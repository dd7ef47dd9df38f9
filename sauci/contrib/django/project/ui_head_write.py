"""Writes ``ui_head.sql`` (see :mod:`sauci.contrib.django.project.ui_head`):
``migrate`` on an empty UI database in a new data dir, dumped. Run when Django,
axes or SauCI's migrations change::

    python -c 'from sauci.contrib.django.project.ui_head_write import write_ui_head; write_ui_head()'
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from sauci.contrib.django.project.ui_head import APPLIED, HEAD_SQL

__all__ = ["dump_ui_database", "write_ui_head"]

_APPLIED_VALUE = re.compile(r"'\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)?'\);$")


def dump_ui_database(conn: sqlite3.Connection) -> str:
    """The text of ``ui_head.sql`` for a database ``migrate`` has just made."""
    lines = [
        "-- A new UI database of the built-in project, as `migrate` makes it: written by",
        "-- sauci.contrib.django.project.ui_head_write.write_ui_head(); do not edit by hand.",
        "",
    ]
    for line in conn.iterdump():
        if line in ("BEGIN TRANSACTION;", "COMMIT;"):
            continue  # the loader runs it in a transaction of its own
        if line.startswith('INSERT INTO "django_migrations"'):
            line = _APPLIED_VALUE.sub(f"'{APPLIED}');", line)
        lines.append(line)
    return "\n".join(lines) + "\n"


def write_ui_head(path: Path = HEAD_SQL) -> None:
    """Run ``migrate`` on an empty database in a new data dir and write its dump
    to ``path``. Configures Django in this process: run it in one of its own."""
    import tempfile

    import django
    from django.conf import settings as django_settings
    from django.core.management import call_command

    from sauci.contrib.django.project.serve import project_settings
    from sauci.core.config import Settings

    with tempfile.TemporaryDirectory(prefix="sauci-ui-head-") as tmp:
        django_settings.configure(**project_settings(Settings(data_dir=Path(tmp))))
        django.setup()
        call_command("migrate", interactive=False, verbosity=0)
        conn = sqlite3.connect(Path(tmp) / "ui" / "ui.sqlite3")
        try:
            path.write_text(dump_ui_database(conn), encoding="utf-8")
        finally:
            conn.close()
