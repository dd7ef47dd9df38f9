"""A badge URL does not tell whether a private repository exists."""

from __future__ import annotations

import pytest
from django.urls import reverse
from test_views import make_build


def _badge(client, repo):
    return client.get(reverse("sauci:badge"), {"repo": repo, "branch": "main"})


def _same(a, b):
    """Status, body and headers equal, apart from Date."""
    headers = lambda r: {k: v for k, v in r.headers.items() if k.lower() != "date"}  # noqa: E731
    return (a.status_code, a.content, headers(a)) == (b.status_code, b.content, headers(b))


@pytest.mark.django_db
class TestBadgeOfPrivateRepository:
    def test_private_and_missing_repositories_answer_the_same_404(self, client, store, settings):
        """Badges not public, anonymous visitor: a real repository looks like no repository."""
        settings.SAUCI = {"STORE": store, "PUBLIC_BADGES": False}
        make_build(store, repo="/srv/secret.git")
        private = _badge(client, "/srv/secret.git")
        missing = _badge(client, "/srv/nothing.git")
        assert 404 == private.status_code
        assert _same(private, missing)

    def test_a_user_who_may_not_view_gets_the_same_404(
        self, client, store, settings, django_user_model
    ):
        """Logged in without sauci.view_builds: same answer for both."""
        settings.SAUCI = {"STORE": store, "PUBLIC_BADGES": False}
        make_build(store, repo="/srv/secret.git")
        client.force_login(django_user_model.objects.create_user("nobody"))
        private = _badge(client, "/srv/secret.git")
        missing = _badge(client, "/srv/nothing.git")
        assert 404 == private.status_code
        assert _same(private, missing)

    def test_a_viewer_sees_the_private_badge(self, viewer_client, store, settings):
        settings.SAUCI = {"STORE": store, "PUBLIC_BADGES": False}
        make_build(store, repo="/srv/secret.git")
        response = _badge(viewer_client, "/srv/secret.git")
        assert 200 == response.status_code
        assert b">passed<" in response.content

    def test_public_badges_of_a_missing_repository_are_404(self, client, store):
        """Public badges: a repository SauCI never built is a 404, not an "unknown" badge."""
        make_build(store)
        assert 404 == _badge(client, "/srv/nothing.git").status_code
        assert 200 == _badge(client, "/srv/app.git").status_code
