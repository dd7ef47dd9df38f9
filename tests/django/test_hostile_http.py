"""Hostile HTTP against every URL pattern of the app: no input may make a page answer 500.

Each pattern of ``sauci.contrib.django.urls`` is requested with hostile path
values (ids past 2**63, negative, not numbers, ``../../etc/passwd``, NUL
bytes, 10,000-character strings, unicode), and with the same values in every
query parameter and header the view reads, as an anonymous visitor and as a
superuser, over an SQLite store and a PostgreSQL store (a server the tests
start, as tests/storage does). Answers must be 2xx, 3xx or 4xx; a 500 is a
failure, and every one found is listed at once.
"""

from __future__ import annotations

import importlib.util
import logging
import re
import time
from pathlib import Path

import pytest
from django.test import Client
from django.urls import URLPattern

from sauci.contrib.django import urls as app_urls
from sauci.core.models import BuildRequest, Repo, Status, StepRun

# The PostgreSQL fixtures of tests/storage (a server started by the tests),
# loaded under a name of their own so that this file needs no copy of them.
_spec = importlib.util.spec_from_file_location(
    "sauci_storage_fixtures", Path(__file__).parent.parent / "storage" / "conftest.py"
)
assert _spec is not None and _spec.loader is not None
_storage = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_storage)
postgres_server = _storage.postgres_server
postgres_url = _storage.postgres_url
truncate_postgres = _storage.truncate_postgres
clean_postgres = _storage.clean_postgres

HOSTILE = (
    "99999999999999999999",  # past 2**64
    "9223372036854775808",  # 2**63: one past the largest BIGINT
    "9223372036854775807",  # the largest BIGINT: valid, but no such build
    "-1",
    "-99999999999999999999",
    "0",
    "1e9",
    "abc",
    "../../etc/passwd",
    "a\x00b",
    "x" * 10000,
    "é☃\U0001d11e",
    "%ff%fe",  # in a path: bytes that are not UTF-8
    " ",
    "--upload-pack=touch /tmp/pwned",
)

# What each view reads from the query string (and headers), by URL name.
QUERY: dict[str, tuple[str, ...]] = {
    "overview": (),
    "builds": ("repo", "branch", "status", "event", "author", "before"),
    "build": (),
    "tests": (),
    "artifacts": (),
    "artifact": ("step", "path"),
    "rerun": (),
    "cancel": (),
    "log": (),
    "log_range": ("end", "start"),
    "log_raw": ("download",),
    "log_stream": ("offset",),
    "log_search": ("q", "after"),
    "log_ts": ("start", "end"),
    "test_history": ("repo", "classname", "name"),
    "analytics": ("repo",),
    "usage": (),
    "metrics": (),
    "healthz": (),
    "readyz": (),
    "badge": ("repo", "branch", "label"),
    "trigger": (),
    "webhook": (),
    "login": ("next",),
    "logout": ("next",),
}
# Form fields the POST actions read.
FORM: dict[str, tuple[str, ...]] = {
    "rerun": ("failed_only",),
    "cancel": (),
    "trigger": ("repo", "branch", "params"),
    "login": ("username", "password", "next"),
    "logout": ("next",),
    "webhook": (),
}
HEADERS = {"log_stream": ("Last-Event-ID",), "metrics": ("Authorization",)}


@pytest.fixture(params=["sqlite", "postgresql"])
def hostile_store(request, settings, tmp_path, git_repo):
    """A store with one finished build (a step with a log) of a registered repository."""
    if request.param == "sqlite":
        from sauci.storage.sqlite import SQLiteStore

        store = SQLiteStore(tmp_path / "sauci.db")
    else:
        from sauci.storage.sqlalchemy import SQLAlchemyStore

        store = SQLAlchemyStore(request.getfixturevalue("clean_postgres"))
    settings.SAUCI = {
        "STORE": store,
        "LOG_STREAM_SECONDS": 0.5,
        "DATA_DIR": str(tmp_path / "data"),
        "METRICS_TOKEN": "t0ken",
    }
    store.save_repo(Repo(id="app", location=str(git_repo)))
    build = store.create_build(
        BuildRequest(repo=str(git_repo), ref="refs/heads/main", sha="a" * 40)
    )
    now = time.time()
    store.update_build(build.id, status=Status.PASSED, started_at=now - 2, finished_at=now)
    store.save_step(
        StepRun(build_id=build.id, name="test", position=0, status=Status.PASSED, finished_at=now)
    )
    store.append_log(build.id, "test", b"line one\nline two\n")
    yield store
    store.close()


def _route(pattern: URLPattern) -> str:
    return str(pattern.pattern)


def _paths(prefix: str) -> list[tuple[str, str]]:
    """(url name, path) for each pattern: once with valid values, then once per hostile
    value in each of its parts."""
    found = []
    for pattern in app_urls.urlpatterns:
        route = _route(pattern)
        found.append((pattern.name, prefix + re.sub(r"<path:[^>]+>", "test", _fill_ids(route))))
        parts = re.findall(r"<[^>]+>", route)
        for i, _ in enumerate(parts):
            for value in HOSTILE:
                count = 0

                def one(m: re.Match[str], i: int = i, value: str = value) -> str:
                    nonlocal count
                    count += 1
                    if count - 1 == i:
                        return value
                    return "test" if m.group(0).startswith("<path:") else "1"

                found.append((pattern.name, prefix + re.sub(r"<[^>]+>", one, route)))
    return found


def _fill_ids(route: str) -> str:
    return re.sub(r"<(?!path:)[^>]+>", "1", route)


def _request(client: Client, method: str, path: str, **kwargs):  # type: ignore[no-untyped-def]
    response = getattr(client, method)(path, **kwargs)
    if getattr(response, "streaming", False):
        try:
            b"".join(response.streaming_content)
        except Exception:  # a stream that breaks half-way is a server error too
            response.status_code = 500
    return response


def _walk(client: Client, repo: str) -> list[str]:
    """Every hostile request; returns the ones answered 500."""
    failures = []
    names = {p.name: p for p in app_urls.urlpatterns}
    for _name, path in _paths("/ci/"):
        for method in ("get", "post"):
            response = _request(client, method, path)
            if response.status_code == 500:
                failures.append(f"{method.upper()} {path[:120]!r}: {response.status_code}")
    for name, params in QUERY.items():
        if name not in names:
            continue
        base = "/ci/" + re.sub(r"<path:[^>]+>", "test", _fill_ids(_route(names[name])))
        for param in params:
            for value in HOSTILE:
                response = _request(client, "get", base, data={param: value})
                if response.status_code == 500:
                    failures.append(f"GET {base}?{param}={value[:40]!r}: {response.status_code}")
        for field in FORM.get(name, ()):
            for value in HOSTILE:
                data = {"repo": repo, "branch": "main", field: value}
                response = _request(client, "post", base, data=data)
                if response.status_code == 500:
                    failures.append(f"POST {base} {field}={value[:40]!r}: {response.status_code}")
        for header in HEADERS.get(name, ()):
            for value in HOSTILE:
                if "\x00" in value:
                    continue  # no HTTP client can send these in a header
                response = _request(client, "get", base, headers={header: value})
                if response.status_code == 500:
                    failures.append(f"GET {base} {header}: {value[:40]!r}: {response.status_code}")
    return failures


@pytest.fixture
def quiet_request_log():
    """The 500s this test looks for are logged by Django too; keep them off the output."""
    logger = logging.getLogger("django.request")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    yield
    logger.setLevel(level)


def test_every_url_pattern_is_walked():
    """The tables above name every pattern of the app, so a new page is walked too."""
    assert {p.name for p in app_urls.urlpatterns} <= set(QUERY)


@pytest.mark.django_db
def test_no_hostile_request_answers_500_to_an_anonymous_visitor(hostile_store, quiet_request_log):
    """Anonymous: every page either sends to log in or refuses; none fails."""
    client = Client(raise_request_exception=False)
    failures = _walk(client, hostile_store.list_registered_repos()[0].location)
    assert [] == failures, "\n".join(failures)


@pytest.mark.django_db
def test_no_hostile_request_answers_500_to_a_superuser(
    hostile_store, admin, settings, quiet_request_log
):
    """A superuser passes every permission check, so every view's own parsing is reached."""
    client = Client(raise_request_exception=False)
    client.force_login(admin)
    failures = _walk(client, hostile_store.list_registered_repos()[0].location)
    assert [] == failures, "\n".join(failures)


@pytest.mark.django_db
def test_a_push_with_nul_in_its_message_is_queued_on_postgres(client, settings, clean_postgres):
    """PostgreSQL refuses NUL in text: the webhook view answered 503 "deliver it
    again" to every delivery of such a push (a driver's DataError would have
    been a 500); the NUL is read as U+FFFD."""
    import hashlib
    import hmac
    import json

    from django.urls import reverse

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
