"""Whether the built-in project's UI database needs ``migrate`` at all.

``migrate`` loads every installed app's migration modules, builds their graph
and runs the ``post_migrate`` handlers (content types, permissions) even when
nothing is to be applied: about 40-60 ms and 2 MB on every start of ``sauci
serve``. The question it answers first, whether every migration on disk is
recorded as applied, needs only the file names and one query, so a restart
with nothing to apply skips it. Any doubt (no table yet, a name not recorded,
a squashed migration) answers "due", and ``migrate`` decides as always.
"""

from __future__ import annotations

import pkgutil
from pathlib import Path

__all__ = ["migrations_due", "names_on_disk"]


def names_on_disk(directory: Path) -> set[str]:
    """Migration module names as Django's loader finds them (not packages, not _ or ~)."""
    return {
        info.name
        for info in pkgutil.iter_modules([str(directory)])
        if not info.ispkg and info.name[0] not in "_~"
    }


def migrations_due() -> bool:
    """True unless every migration of every installed app is recorded as applied."""
    from django.apps import apps
    from django.conf import settings
    from django.db import connection
    from django.db.migrations.recorder import MigrationRecorder

    if getattr(settings, "MIGRATION_MODULES", None):
        return True  # migrations moved elsewhere: let the loader find them
    recorder = MigrationRecorder(connection)
    if not recorder.has_table():
        return True
    applied = set(recorder.applied_migrations())
    for config in apps.get_app_configs():
        directory = Path(config.path) / "migrations"
        if not directory.is_dir():
            continue
        if any((config.label, name) not in applied for name in names_on_disk(directory)):
            return True
    return False
