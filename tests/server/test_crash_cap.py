"""A build whose runner keeps dying (a step that kills the server) is tried
``attempts`` times, then ends errored: the server never crash-loops on it."""

from __future__ import annotations

import socket

import pytest

from sauci.app.server import build_server
from sauci.core.config import Settings
from sauci.core.models import BuildRequest, Status
from sauci.core.server import ServerOptions
from sauci.storage import open_store


def _interrupted(store, attempt: int):
    """A running build whose owner (a server on this host) is dead."""
    request = BuildRequest(
        repo="/r", ref="refs/heads/main", sha="b" * 40, event="push", attempt=attempt
    )
    build = store.create_build(request)
    dead = f"serve:{socket.gethostname()}:999999999"
    return store.update_build(build.id, status=Status.RUNNING, claimed_by=dead)


@pytest.fixture
def store(tmp_path):
    (tmp_path / "data").mkdir()
    return open_store(f"sqlite:///{tmp_path / 'data' / 'sauci.db'}")


def test_an_interrupted_build_is_requeued_with_its_attempt_counted(tmp_path, store):
    settings = Settings(data_dir=tmp_path / "data", sandbox="local")
    build = _interrupted(store, attempt=1)
    (again,) = build_server(store=store, settings=settings).recover()
    assert 2 == again.attempt
    assert Status.QUEUED == again.status
    reason = store.get_build(build.id).reason
    assert f"SauCI restarted during the build; requeued as build {again.id}" == reason


@pytest.mark.parametrize("attempts", [1, 3])
def test_after_the_last_attempt_the_build_ends_errored_and_is_not_requeued(
    tmp_path, store, attempts
):
    settings = Settings(data_dir=tmp_path / "data", sandbox="local", attempts=attempts)
    build = _interrupted(store, attempt=attempts)
    server = build_server(store=store, settings=settings, options=ServerOptions())
    assert [] == server.recover()
    after = store.get_build(build.id)
    assert Status.ERRORED == after.status
    assert f"the runner died {attempts} times; not tried again" == after.reason
    assert [build.id] == [b.id for b in store.list_builds()]


def test_a_restarted_server_removes_what_a_crashed_ones_builds_left_on_disk(tmp_path, store):
    """Matrix entries' copies, a build's HOME and /tmp, a cache restore's private
    directory: removed at start; slots and `sauci run`'s workspaces are kept."""
    settings = Settings(data_dir=tmp_path / "data", sandbox="local")
    workspaces = settings.workspaces_dir
    left = ["repo-w0.entry-b7-test_3_-ab12", "repo-w0-scratch", ".repo-w0.cache-xy"]
    kept = ["repo-w0", "run-123-456-ab", "run-123-456-ab-scratch"]
    for name in left + kept:
        (workspaces / name / "sub").mkdir(parents=True)
        (workspaces / name / "sub" / "f").write_text("x")
    (workspaces / "repo-w0-scratch" / "sub").chmod(0)  # a step may leave such things
    build_server(store=store, settings=settings).recover()
    assert sorted(kept) == sorted(p.name for p in workspaces.iterdir())
