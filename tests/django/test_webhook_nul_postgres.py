"""A push whose head commit message holds a NUL, through the webhook view to a
PostgreSQL store (which refuses NUL in text): the view answered 503 "deliver it
again", every time the forge did (a driver's DataError would have been a 500)."""

from __future__ import annotations

import hashlib
import hmac
import importlib.util
import json
from pathlib import Path

import pytest
from django.urls import reverse

from sauci.core.models import Repo

# The PostgreSQL fixtures of tests/storage, as tests/django/test_hostile_http.py loads them.
_spec = importlib.util.spec_from_file_location(
    "sauci_storage_fixtures_nul", Path(__file__).parent.parent / "storage" / "conftest.py"
)
assert _spec is not None and _spec.loader is not None
_storage = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_storage)
postgres_server = _storage.postgres_server
postgres_url = _storage.postgres_url
truncate_postgres = _storage.truncate_postgres
clean_postgres = _storage.clean_postgres


@pytest.mark.django_db
def test_a_push_with_nul_in_its_message_is_queued_on_postgres(client, settings, clean_postgres):
    from sauci.storage.sqlalchemy import SQLAlchemyStore

    store = SQLAlchemyStore(clean_postgres)
    settings.SAUCI = {"STORE": store, "WEBHOOK_SECRET": "s"}
    url = "https://github.com/octo-org/widget.git"
    store.save_repo(Repo(id="widget", location=url, added_at=1.0))
    commit = {"id": "b" * 40, "message": "fix\x00bad", "author": {"name": "A\x00B"}}
    body = json.dumps({
        "ref": "refs/heads/main", "before": "a" * 40, "after": "b" * 40,
        "head_commit": commit, "commits": [commit],
        "repository": {"clone_url": url}, "pusher": {"name": "mo\x00na"},
    }).encode()  # fmt: skip
    digest = hmac.new(b"s", body, hashlib.sha256).hexdigest()
    try:
        response = client.post(
            reverse("sauci:webhook"), body, content_type="application/json",
            headers={"X-GitHub-Event": "push", "X-GitHub-Delivery": "d1",
                     "X-Hub-Signature-256": f"sha256={digest}"},
        )  # fmt: skip
        assert 202 == response.status_code, response.content
        (build,) = store.list_builds()
        assert ("b" * 40, "fix\ufffdbad") == (build.sha, build.message)
    finally:
        store.close()
