"""The poller against real repositories: the first poll builds only the default
branch, later polls build exactly what is new or moved, never deletions."""

from __future__ import annotations

import json

import pytest

from sauci.core.models import BuildRequest
from sauci.exceptions import SourceError
from sauci.triggers import Poller

ZERO = "0" * 40


@pytest.fixture
def upstream(tmp_path, git, commit):
    """A repository with history, branches and tags: what a poller meets first."""
    repo = tmp_path / "upstream"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    commit(repo, message="one")
    git(repo, "tag", "v0.1")
    git(repo, "tag", "-a", "-m", "annotated", "v0.2")
    git(repo, "branch", "old-feature")
    commit(repo, message="two")
    return repo


def test_first_poll_builds_only_the_default_branch(tmp_path, git, upstream):
    poller = Poller(tmp_path / "state.json")
    requests = poller.poll(str(upstream))
    expected = BuildRequest(repo=str(upstream), ref="refs/heads/main",
                            sha=git(upstream, "rev-parse", "main"), old_sha=ZERO, event="push",
                            priority=10, pusher="poller")  # fmt: skip
    assert [expected] == requests
    state = json.loads((tmp_path / "state.json").read_text())
    assert {"refs/heads/main", "refs/heads/old-feature", "refs/tags/v0.1", "refs/tags/v0.2"} == set(
        state["repos"][str(upstream)]["refs"]
    )
    assert [] == poller.poll(str(upstream))


def test_later_polls_build_new_and_moved_refs_but_not_deletions(tmp_path, git, commit, upstream):
    poller = Poller(tmp_path / "state.json")
    poller.poll(str(upstream))
    before = git(upstream, "rev-parse", "main")
    after = commit(upstream, message="three")
    git(upstream, "branch", "feature")
    git(upstream, "tag", "-a", "-m", "release", "v1.0")
    git(upstream, "branch", "-D", "old-feature")
    requests = Poller(tmp_path / "state.json").poll(str(upstream))  # state survives a restart
    assert [
        ("refs/heads/feature", after, ZERO),
        ("refs/heads/main", after, before),
        ("refs/tags/v1.0", after, ZERO),  # an annotated tag builds the commit it names
    ] == [(r.ref, r.sha, r.old_sha) for r in requests]
    assert [] == poller.poll(str(upstream))


def test_default_branch_is_whatever_head_names(tmp_path, git, commit):
    repo = tmp_path / "trunk.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "trunk", str(repo))
    work = tmp_path / "w"
    git(tmp_path, "clone", "-q", str(repo), str(work))
    git(work, "checkout", "-q", "-b", "trunk")
    sha = commit(work, message="one")
    git(work, "push", "-q", "origin", "trunk", "trunk:refs/heads/other")
    assert [("refs/heads/trunk", sha)] == [
        (r.ref, r.sha) for r in Poller(tmp_path / "s.json").poll(str(repo))
    ]


def test_empty_repository_then_its_first_push(tmp_path, git, commit):
    repo = tmp_path / "empty.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(repo))
    poller = Poller(tmp_path / "s.json")
    assert [] == poller.poll(str(repo))
    work = tmp_path / "w"
    git(tmp_path, "clone", "-q", str(repo), str(work))
    git(work, "checkout", "-q", "-b", "main")
    sha = commit(work, message="one")
    git(work, "push", "-q", "origin", "main")
    assert [("refs/heads/main", sha)] == [(r.ref, r.sha) for r in poller.poll(str(repo))]


def test_unreachable_repository_is_a_source_error_and_keeps_state(tmp_path, upstream):
    poller = Poller(tmp_path / "state.json")
    poller.poll(str(upstream))
    saved = (tmp_path / "state.json").read_text()
    with pytest.raises(SourceError, match="ls-remote"):
        poller.poll(str(tmp_path / "missing"))
    assert saved == (tmp_path / "state.json").read_text()


def test_unreadable_state_counts_as_a_first_poll(tmp_path, upstream):
    (tmp_path / "state.json").write_text("{not json")
    requests = Poller(tmp_path / "state.json").poll(str(upstream))
    assert ["refs/heads/main"] == [r.ref for r in requests]
    assert str(upstream) in json.loads((tmp_path / "state.json").read_text())["repos"]


def test_forget_makes_the_next_poll_a_first_poll(tmp_path, upstream):
    poller = Poller(tmp_path / "state.json")
    poller.poll(str(upstream))
    poller.forget(str(upstream))
    assert ["refs/heads/main"] == [r.ref for r in poller.poll(str(upstream))]


def test_a_branch_name_no_store_can_keep_is_left_out_of_the_poll(tmp_path, git, upstream):
    """A 3,000-byte branch name (PostgreSQL's index of builds by ref refuses
    past 2,704) failed the poll's first request and lost those after it."""
    poller = Poller(tmp_path / "state.json")
    poller.poll(str(upstream))
    long = "/".join(["x" * 200] * 15)
    git(upstream, "branch", long)
    git(upstream, "branch", "zz-after")
    requests = poller.poll(str(upstream))
    assert ["refs/heads/zz-after"] == [r.ref for r in requests]
