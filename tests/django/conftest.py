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


def _git(*args, cwd):
    import subprocess

    subprocess.run(
        ["git", "-c", "user.name=T", "-c", "user.email=t@example.com", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
    )


@pytest.fixture
def git_repo(tmp_path):
    """A git repository with the branches main and feature/x (one commit)."""
    repo = tmp_path / "app"
    repo.mkdir()
    _git("init", "-q", "-b", "main", cwd=repo)
    (repo / "README").write_text("hello\n")
    _git("add", "README", cwd=repo)
    _git("commit", "-q", "-m", "first", cwd=repo)
    _git("branch", "feature/x", cwd=repo)
    return repo


@pytest.fixture
def registered_repo(store, git_repo):
    """``git_repo`` registered with SauCI (as `sauci repo add` does); its location."""
    from sauci.core.models import Repo

    store.save_repo(Repo(id="app", location=str(git_repo), added_at=1.0))
    return str(git_repo)
