"""Django for the UI tests: the small project in ``uiproject/``, set up here.

Settings are configured when this conftest is imported, which in a full test
run is after pytest-django's own start-up, so Django is set up here too.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "uiproject.settings")

import django

django.setup()


@pytest.fixture
def store(settings):
    """A fresh MemoryStore behind the app, for one test."""
    from sauci.storage.memory import MemoryStore

    fresh = MemoryStore()
    settings.SAUCI = {"STORE": fresh}
    return fresh


@pytest.fixture
def viewer_user(db, django_user_model):
    from django.contrib.auth.models import Permission

    user = django_user_model.objects.create_user("viv", password="pw")
    user.user_permissions.add(Permission.objects.get(codename="view_builds"))
    return user


@pytest.fixture
def admin(db, django_user_model):
    return django_user_model.objects.create_superuser("root", password="pw")


@pytest.fixture
def viewer_client(client, viewer_user):
    client.force_login(viewer_user)
    return client


@pytest.fixture
def admin_client(client, admin):
    client.force_login(admin)
    return client
