"""A worker's mirror lends kept slots: every promise of a Source, the same slot
(and no new worktree) for builds one after another, and a commit with
submodules still checked out with them."""

from __future__ import annotations

import subprocess

import pytest

from sauci.distributed import SlotMirrorSource, slot_sources
from sauci.source.mirrors import MirrorCache, MirrorSource
from sauci.source.workspaces import wait_for_tidying
from sauci.testing.source import SourceConformance

FILE_ALLOW = ("-c", "protocol.file.allow=always")
IDENTITY = ("-c", "user.name=Tess Ter", "-c", "user.email=tess@example.com")


@pytest.fixture
def git(monkeypatch, tmp_path):
    """git in a directory, with no global or system configuration; returns stdout."""
    empty = tmp_path / "gitconfig"
    empty.write_text("")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(empty))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")

    def run(cwd, *args):
        done = subprocess.run(["git", *IDENTITY, *args], cwd=cwd, capture_output=True, text=True)
        assert 0 == done.returncode, f"git {' '.join(args)}: {done.stderr}"
        return done.stdout.strip()

    return run


@pytest.fixture
def commit(git):
    def make(repo, name, text, message):
        (repo / name).write_text(text)
        git(repo, "add", name)
        git(repo, "commit", "-q", "-m", message)
        return git(repo, "rev-parse", "HEAD")

    return make


class TestSlotMirrorSource(SourceConformance):
    @pytest.fixture
    def make_source(self, tmp_path):
        return lambda repo: SlotMirrorSource(MirrorSource(f"file://{repo}", tmp_path / "mirrors"))


def test_builds_one_after_another_reuse_one_slot(tmp_path, git, commit):
    repo = tmp_path / "app"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    first = commit(repo, "a.txt", "one\n", message="one")
    second = commit(repo, "a.txt", "two\n", message="two")
    source = slot_sources(lambda r: MirrorSource(r, tmp_path / "mirrors"))(str(repo))
    root = tmp_path / "workspaces"
    paths = []
    for sha, text in [(first, "one\n"), (first, "one\n"), (second, "two\n")]:
        lease = source.reserve(root)
        path = lease.reset(source.resolve(sha))
        assert text == (path / "a.txt").read_text()
        assert sha == git(path, "rev-parse", "HEAD")
        (path / "left-by-a-step.txt").write_text("x")
        paths.append(path)
        lease.release(tidy=True)
        assert wait_for_tidying(30)
    assert 1 == len(set(paths))
    assert not (paths[0] / "left-by-a-step.txt").exists()
    worktrees = git(source.mirror_path, "worktree", "list").splitlines()
    assert 2 == len(worktrees)  # the bare mirror and the one slot


def test_a_commit_with_submodules_gets_them(tmp_path, git, commit):
    sub = tmp_path / "lib"
    sub.mkdir()
    git(sub, "init", "-q", "-b", "main")
    commit(sub, "lib.txt", "library v1\n", message="lib one")
    repo = tmp_path / "app"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    plain = commit(repo, "app.txt", "app v1\n", message="app one")
    git(repo, *FILE_ALLOW, "submodule", "add", "-q", str(sub), "vendor/lib")
    git(repo, "commit", "-q", "-m", "add lib")
    with_sub = git(repo, "rev-parse", "HEAD")
    cache = MirrorCache(tmp_path / "mirrors", allow_file_submodules=True)
    source = SlotMirrorSource(MirrorSource(str(repo), tmp_path / "mirrors", cache=cache))
    root = tmp_path / "workspaces"
    for sha in (plain, with_sub, plain):
        lease = source.reserve(root)
        try:
            path = lease.reset(source.resolve(sha))
            assert "app v1\n" == (path / "app.txt").read_text()
            has_lib = (path / "vendor" / "lib" / "lib.txt").exists()
            assert has_lib == (sha == with_sub)
        finally:
            lease.release(tidy=True)
        assert wait_for_tidying(30)
