"""`sauci repo add --poll N` is the interval that repository is polled at; the
server's --poll is only the default (issue 'Real projects, real results', item 7)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sauci.app.polling import poll_intervals
from sauci.app.server import build_server
from sauci.cli import main
from sauci.core.config import Settings
from sauci.core.models import Repo
from sauci.core.server import ServerOptions
from sauci.storage import open_store
from sauci.triggers.due import PollTrigger


def test_a_repositorys_own_interval_wins_and_the_servers_is_the_fallback():
    repos = [
        Repo(id="a", location="/srv/a.git", hook="none", poll_interval=5.0, added_at=1.0),
        Repo(id="b", location="/srv/b.git", hook="none", poll_interval=None, added_at=1.0),
        Repo(id="c", location="https://x/c.git", hook="none", poll_interval=0.0, added_at=1.0),
    ]
    assert {"/srv/a.git": 5.0, "/srv/b.git": 60.0, "https://x/c.git": 60.0} == poll_intervals(
        repos, default=60.0
    )


@pytest.fixture
def bare(tmp_path, git, commit):
    """Make a bare repository with one commit on main; returns (bare, clone)."""

    def make(name: str) -> tuple[Path, Path]:
        origin = tmp_path / f"{name}.git"
        git(tmp_path, "init", "-q", "--bare", "-b", "main", str(origin))
        clone = tmp_path / f"{name}-clone"
        git(tmp_path, "clone", "-q", str(origin), str(clone))
        git(clone, "checkout", "-q", "-b", "main")
        commit(clone, message=f"{name} first")
        git(clone, "push", "-q", "origin", "main")
        return origin, clone

    return make


def test_each_registered_repository_is_polled_at_its_own_interval(tmp_path, bare, commit, git):
    data = tmp_path / "data"
    (fast, fast_clone), (slow, slow_clone), (plain, _) = bare("fast"), bare("slow"), bare("plain")
    common = ["--hook", "none", "--data-dir", str(data), "--color", "never"]
    assert 0 == main(["repo", "add", str(fast), "--poll", "5", *common])
    assert 0 == main(["repo", "add", str(slow), "--poll", "40", *common])
    assert 0 == main(["repo", "add", str(plain), *common])  # no --poll: the server's

    settings = Settings(data_dir=data, grace=1.0, sandbox="local")
    store = open_store(settings.store_url)
    try:
        repos = [r.location for r in store.list_registered_repos()]
        server = build_server(
            store=store, settings=settings, repos=repos, options=ServerOptions(poll_interval=60.0)
        )
    finally:
        store.close()
    [poll] = [t for t in server.triggers if isinstance(t, PollTrigger)]
    f, s, p = (str(r.resolve()) for r in (fast, slow, plain))
    assert {f: 5.0, s: 40.0, p: 60.0} == {r: poll.interval_of(r) for r in (f, s, p)}

    # The first round polls every repository and builds each default branch once.
    first = poll.due(1000.0)
    assert [f, p, s] == sorted(r.repo for r in first)
    assert {f: 1005.0, s: 1040.0, p: 1060.0} == poll.next_polls

    fast_sha = commit(fast_clone, name="g", message="fast second")
    git(fast_clone, "push", "-q", "origin", "main")
    slow_sha = commit(slow_clone, name="g", message="slow second")
    git(slow_clone, "push", "-q", "origin", "main")

    assert [] == poll.due(1004.9)  # nobody is due yet
    [picked] = poll.due(1005.0)  # the fast one only: the slow one's commit waits
    assert (f, fast_sha) == (picked.repo, picked.sha)
    assert {f: 1010.0, s: 1040.0, p: 1060.0} == poll.next_polls
    assert [] == poll.due(1039.0)  # fast polled again: nothing new; slow not due
    [later] = poll.due(1040.0)
    assert (s, slow_sha) == (later.repo, later.sha)
    assert None is poll.last_error
