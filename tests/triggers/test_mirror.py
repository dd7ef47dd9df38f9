"""MirrorCache against a local "remote" with a submodule: clone once, fetch after,
worktrees at exact shas with submodules, clean removal."""

from __future__ import annotations

import pytest

from sauci.exceptions import SourceError
from sauci.source.git import repo_id
from sauci.source.mirrors import MirrorCache

FILE_ALLOW = ("-c", "protocol.file.allow=always")


@pytest.fixture
def upstream(tmp_path, git, commit):
    """A repository whose submodule is another local repository."""
    sub = tmp_path / "lib"
    sub.mkdir()
    git(sub, "init", "-q", "-b", "main")
    commit(sub, "lib.txt", "library v1\n", message="lib one")
    repo = tmp_path / "app"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    commit(repo, "app.txt", "app v1\n", message="app one")
    git(repo, *FILE_ALLOW, "submodule", "add", "-q", str(sub), "vendor/lib")
    git(repo, "commit", "-q", "-m", "add lib")
    return repo, sub


def test_checkout_is_at_the_exact_sha_with_submodules(tmp_path, git, commit, upstream):
    repo, _sub = upstream
    cache = MirrorCache(tmp_path / "mirrors", allow_file_submodules=True)
    first = git(repo, "rev-parse", "HEAD")
    commit(repo, "app.txt", "app v2\n", message="app two")
    ws = cache.checkout(repo, first, tmp_path / "ws")
    assert "app v1\n" == (ws / "app.txt").read_text()
    assert "library v1\n" == (ws / "vendor" / "lib" / "lib.txt").read_text()
    assert first == git(ws, "rev-parse", "HEAD")
    assert tmp_path / "mirrors" / f"{repo_id(repo)}.git" == cache.path_for(repo)
    assert "true" == git(cache.path_for(repo), "rev-parse", "--is-bare-repository")


def test_second_use_fetches_into_the_same_mirror(tmp_path, git, commit, upstream):
    repo, _sub = upstream
    cache = MirrorCache(tmp_path / "mirrors")
    mirror = cache.mirror(repo)
    marker = mirror / "sauci-test-marker"
    marker.write_text("a re-clone would lose me")
    git(repo, "branch", "doomed")
    new = commit(repo, "app.txt", "app v3\n", message="app three")
    git(repo, "branch", "-D", "doomed")
    assert mirror == cache.mirror(repo)
    assert marker.exists()
    assert new == git(mirror, "rev-parse", "main")
    assert "" == git(mirror, "branch", "--list", "doomed")  # --prune


def test_checkout_of_a_sha_the_mirror_lacks_fetches_first(tmp_path, git, commit, upstream):
    repo, _sub = upstream
    cache = MirrorCache(tmp_path / "mirrors", allow_file_submodules=True)
    cache.mirror(repo)
    new = commit(repo, "app.txt", "app v4\n", message="app four")
    ws = cache.checkout(repo, new, tmp_path / "ws")
    assert "app v4\n" == (ws / "app.txt").read_text()


def test_unknown_sha_and_bad_input_are_source_errors(tmp_path, upstream):
    repo, _sub = upstream
    cache = MirrorCache(tmp_path / "mirrors")
    with pytest.raises(SourceError, match="is not a commit in"):
        cache.checkout(repo, "1" * 40, tmp_path / "ws")
    with pytest.raises(SourceError, match="is not a commit sha"):
        cache.checkout(repo, "--upload-pack=evil", tmp_path / "ws")
    with pytest.raises(SourceError):
        cache.mirror(tmp_path / "no-such-repo")
    assert not cache.path_for(tmp_path / "no-such-repo").exists()  # no half mirror


def test_local_submodules_are_refused_unless_allowed(tmp_path, git, upstream):
    """git's CVE-2022-39253 default: a built repository may not pull in local repositories."""
    repo, _sub = upstream
    with pytest.raises(SourceError, match="submodule"):
        MirrorCache(tmp_path / "mirrors").checkout(
            repo, git(repo, "rev-parse", "HEAD"), tmp_path / "ws"
        )


def test_remove_deletes_the_workspace_and_the_worktree_entry(tmp_path, git, upstream):
    repo, _sub = upstream
    cache = MirrorCache(tmp_path / "mirrors", allow_file_submodules=True)
    ws = cache.checkout(repo, git(repo, "rev-parse", "HEAD"), tmp_path / "ws")
    cache.remove(repo, ws)
    assert not ws.exists()
    assert str(ws) not in git(cache.path_for(repo), "worktree", "list")
    # The same destination can be checked out again (no stale worktree entry).
    assert cache.checkout(repo, git(repo, "rev-parse", "HEAD"), ws).exists()


def test_checkout_over_an_existing_workspace_replaces_it(tmp_path, git, commit, upstream):
    repo, _sub = upstream
    cache = MirrorCache(tmp_path / "mirrors", allow_file_submodules=True)
    first = git(repo, "rev-parse", "HEAD")
    second = commit(repo, "app.txt", "app v5\n", message="app five")
    cache.checkout(repo, first, tmp_path / "ws")
    ws = cache.checkout(repo, second, tmp_path / "ws")
    assert "app v5\n" == (ws / "app.txt").read_text()


def test_repo_id_is_stable_short_and_safe():
    assert repo_id("/srv/git/project.git") == repo_id("/srv/git/project.git/")
    assert repo_id("/srv/git/project.git").startswith("project-")
    assert repo_id("/srv/a/project") != repo_id("/srv/b/project")
    url = repo_id("https://GitHub.com/owner/Tool.git")
    assert url == repo_id("https://github.com/owner/Tool")
    assert url.startswith("Tool-") and len(url) == len("Tool-") + 8
    assert repo_id("git@github.com:owner/tool.git").startswith("tool-")
    assert repo_id("/home/me/project/.git").startswith("project-")
    weird = repo_id("https://example.com/a/we ird;$(x).git")
    assert set(weird) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


def test_mirror_source_has_the_runners_source_interface(tmp_path, git, commit, upstream):
    """What LocalRunner calls for a repository known by URL: resolve, commit, checkout, remove."""
    from sauci.source.mirrors import MirrorSource

    repo, _sub = upstream
    url = f"file://{repo}"
    source = MirrorSource(url, tmp_path / "mirrors", cache=MirrorCache(
        tmp_path / "mirrors", allow_file_submodules=True))  # fmt: skip
    first = source.resolve("main")
    assert git(repo, "rev-parse", "main") == first
    newer = commit(repo, "app.txt", "app v6\n", message="app six\n\nbody")
    assert newer == source.resolve("refs/heads/main")  # a ref fetches first
    assert first == source.resolve(first)  # a known sha does not need to
    info = source.commit(newer)
    assert (newer, "", "Tess Ter <tess@example.com>", "app six\n\nbody") == (
        info.sha, info.ref, info.author, info.message
    )  # fmt: skip
    ws = source.checkout(first, tmp_path / "ws")
    assert "app v1\n" == (ws / "app.txt").read_text()
    source.remove(ws)
    assert not ws.exists()
    with pytest.raises(SourceError, match="is not a commit in"):
        source.resolve("no-such-branch")
    with pytest.raises(SourceError, match="is not a commit in"):
        source.resolve("--output=/tmp/x")


def test_one_rule_says_what_is_remote(tmp_path):
    from sauci.source.git import is_remote

    for remote in ("https://example.com/r.git", "git@example.com:org/r.git", "host:path/r"):
        assert is_remote(remote), remote
    (tmp_path / "odd:name").mkdir()
    for local in (str(tmp_path / "odd:name"), "some/dir:with-colon", "/srv/git/app.git"):
        assert not is_remote(local), local


def test_a_worktree_added_beside_a_half_made_one_is_tried_again(tmp_path, git, commit, monkeypatch):
    # A worker's slots add their first worktrees side by side; git reads every
    # worktree's `commondir`, and one another add has made but not yet
    # written stops it ("failed to read worktrees/X/commondir"): the build
    # errored (1 of 10 runs of the mixed load through real workers).
    from types import SimpleNamespace

    from sauci.source import mirrors

    repo = tmp_path / "solo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    sha = commit(repo, "a.txt", "one\n", message="one")
    cache = MirrorCache(tmp_path / "mirrors")
    half = cache.mirror(repo) / "worktrees" / "half"
    half.mkdir(parents=True)
    (half / "commondir").write_text("")  # made, not yet written
    (half / "gitdir").write_text(f"{tmp_path / 'half'}/.git\n")
    waits: list[float] = []

    def other_add_writes_it(seconds: float) -> None:
        waits.append(seconds)
        (half / "commondir").write_text("../..\n")

    monkeypatch.setattr(mirrors, "time", SimpleNamespace(sleep=other_add_writes_it))
    ws = cache.checkout(repo, sha, tmp_path / "ws")
    assert "one\n" == (ws / "a.txt").read_text()
    assert 1 == len(waits)
