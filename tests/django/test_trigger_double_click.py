"""Two clicks on Trigger in the same second make one build, through the real
form post with Django's CSRF checks on."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse


@pytest.mark.django_db
def test_a_double_click_with_the_csrf_token_queues_one_build(
    store: Any, admin: Any, registered_repo: str
) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin)
    form = {"repo": registered_repo, "branch": "main", "params": "A=1"}
    assert 403 == client.post(reverse("sauci:trigger"), form).status_code  # no token
    assert [] == store.list_builds()
    token = client.get(reverse("sauci:builds")).context["csrf_token"]
    clicks = [
        client.post(reverse("sauci:trigger"), {**form, "csrfmiddlewaretoken": token})
        for _ in range(2)
    ]
    (build,) = store.list_builds()
    assert [302, 302] == [c.status_code for c in clicks]
    assert {reverse("sauci:build", args=[build.id])} == {c["Location"] for c in clicks}
