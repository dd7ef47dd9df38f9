"""The build list's search box over an SQLite store, whose search reads an FTS5
index (migration 0006): whatever a visitor types is text to find, never FTS5
or LIKE syntax, never an error page."""

from __future__ import annotations

import pytest
from django.urls import reverse

from sauci.core.models import BuildRequest
from sauci.storage.sqlite import SQLiteStore

HOSTILE = ['NEAR(', '"', '""', "'", "%", "_", "100%_", 'x" OR "y', "*", "a:b", "-", "^",
           "(", ")", "\\", "NOT", "é\u202e", "a" * 200]  # fmt: skip


@pytest.fixture
def sqlite_store(settings, tmp_path):
    store = SQLiteStore(tmp_path / "sauci.db")
    settings.SAUCI = {"STORE": store, "PUBLIC": True}
    yield store
    store.close()


@pytest.mark.django_db
@pytest.mark.parametrize("text", HOSTILE)
def test_any_search_text_answers_a_page(client, sqlite_store, text):
    sqlite_store.create_build(BuildRequest(repo="app", message="plain"))
    response = client.get(reverse("sauci:builds"), {"q": text})
    assert 200 == response.status_code
    assert b"plain" not in response.content  # nothing matched: no build listed


@pytest.mark.django_db
def test_search_finds_a_literal_piece_of_a_message(client, sqlite_store):
    found = sqlite_store.create_build(BuildRequest(repo="app", message='fix "NEAR(x)" 100%_'))
    sqlite_store.create_build(BuildRequest(repo="app", message="other"))
    html = client.get(reverse("sauci:builds"), {"q": '"near(x)" 100%'}).content.decode()
    assert f"/builds/{found.id}/" in html and "other" not in html


@pytest.mark.django_db
def test_a_nul_in_the_search_is_refused_with_its_reason(client, sqlite_store):
    response = client.get(reverse("sauci:builds"), {"q": "a\x00b"})
    assert 400 == response.status_code and response.content
