"""The build page shows what a step's cache did (hit or miss, size): the
executor puts it in the step's reason."""

from __future__ import annotations

import time

import pytest
from django.urls import reverse

from sauci.core.models import BuildRequest, Status, StepRun


@pytest.mark.django_db
def test_the_build_page_shows_hit_and_miss(viewer_client, store):
    build = store.create_build(
        BuildRequest(repo="/srv/app.git", ref="refs/heads/main", sha="a" * 40)
    )
    now = time.time()
    store.update_build(build.id, status=Status.PASSED, started_at=now - 5, finished_at=now)
    notes = {
        "install": "cache hit venv-3f2a (24.2 MiB)",
        "build": "cache miss out-1; restored out-0 (1.0 KiB); saved 2.0 KiB",
    }
    for i, (name, note) in enumerate(notes.items()):
        store.save_step(
            StepRun(
                build_id=build.id,
                name=name,
                position=i,
                status=Status.PASSED,
                reason=note,
                started_at=now - 4,
                finished_at=now,
            )
        )
    page = viewer_client.get(reverse("sauci:build", args=[build.id])).content.decode()
    for note in notes.values():
        assert note in page
