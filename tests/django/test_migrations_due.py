"""sauci serve skips `migrate` only when every migration on disk is recorded applied."""

from __future__ import annotations

import pytest
from django.db.migrations.recorder import MigrationRecorder

from sauci.contrib.django.project.migrations_due import migrations_due

pytestmark = pytest.mark.django_db


def test_a_migrated_database_needs_no_migrate():
    assert migrations_due() is False


def test_one_migration_not_recorded_makes_migrate_due():
    MigrationRecorder.Migration.objects.filter(app="sauci", name="0001_initial").delete()
    assert migrations_due() is True


def test_a_database_with_nothing_recorded_needs_migrate():
    MigrationRecorder.Migration.objects.all().delete()
    assert migrations_due() is True


def test_moved_migration_modules_leave_the_decision_to_migrate(settings):
    settings.MIGRATION_MODULES = {"sauci": "elsewhere.migrations"}
    assert migrations_due() is True
