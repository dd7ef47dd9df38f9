"""A worker's mirror lends kept slots: every promise of a Source, the same slot
(and no new worktree) for builds one after another, and a commit with
submodules still checked out with them."""

from __future__ import annotations

import subprocess
import threading

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


def _one_commit_source(tmp_path, git, commit):
    """A worker's slot source over a new repository of one commit, and that commit."""
    repo = tmp_path / "app"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    sha = commit(repo, "a.txt", "one\n", message="one")
    return slot_sources(lambda r: MirrorSource(r, tmp_path / "mirrors"))(str(repo)), sha


def test_two_slots_starting_on_a_new_repository_clone_it_once_and_ask_git_once(
    tmp_path, git, commit, monkeypatch
):
    # Both slots of a worker take their first build of a repository at once:
    # the second waits for the first's look in the mirror (its clone), and
    # takes its answer without a git process of its own.
    source, sha = _one_commit_source(tmp_path, git, commit)
    entered = threading.Semaphore(0)
    updates: list[str] = []
    looks: list[str] = []
    resolve, update = SlotMirrorSource.resolve, MirrorCache._update
    mirror_resolve = MirrorSource.resolve

    def resolve_entered(self, rev="HEAD"):
        entered.release()
        return resolve(self, rev)

    def looked(self, rev="HEAD"):
        looks.append(rev)
        return mirror_resolve(self, rev)

    def counted_update(self, url, path):
        updates.append("fetch" if (path / "HEAD").exists() else "clone")
        if len(updates) == 1:  # hold the clone until the other slot asks too
            assert entered.acquire(timeout=30) and entered.acquire(timeout=30)
        return update(self, url, path)

    monkeypatch.setattr(SlotMirrorSource, "resolve", resolve_entered)
    monkeypatch.setattr(MirrorSource, "resolve", looked)
    monkeypatch.setattr(MirrorCache, "_update", counted_update)
    found: list[str] = []

    def slot():
        lease = source.reserve(tmp_path / "workspaces")
        found.append((lease.reset(source.resolve(sha)) / "a.txt").read_text())
        lease.release()

    threads = [threading.Thread(target=slot) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert ["one\n", "one\n"] == found
    assert ["clone"] == updates
    assert [sha] == looks


def test_a_slot_adds_its_worktree_beside_another_being_added(tmp_path, git, commit):
    # The mirror's lock is shared by worktrees being added (the two slots of a
    # worker make their first ones at once) and held alone by a fetch or prune.
    import fcntl

    source, sha = _one_commit_source(tmp_path, git, commit)
    assert sha == source.resolve(sha)  # cloned
    made: list[str] = []

    def checkout(name):
        made.append((source.checkout(sha, tmp_path / "workspaces" / name) / "a.txt").read_text())

    with open(source.mirror_path.with_suffix(".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_SH)  # another slot's `git worktree add`
        beside = threading.Thread(target=checkout, args=("beside",))
        beside.start()
        beside.join(30)
        assert ["one\n"] == made
        fcntl.flock(lock, fcntl.LOCK_EX)  # a fetch or a prune
        after = threading.Thread(target=checkout, args=("after",))
        after.start()
        after.join(0.5)
        assert ["one\n"] == made  # waits for it
        fcntl.flock(lock, fcntl.LOCK_UN)
        after.join(30)
    assert ["one\n", "one\n"] == made


def test_a_new_slot_at_a_commit_the_mirror_has_looks_for_it_no_more(
    tmp_path, git, commit, monkeypatch
):
    from sauci.source import mirrors

    source, sha = _one_commit_source(tmp_path, git, commit)
    assert sha == source.resolve(sha)  # cloned: the mirror was seen to have it
    looks: list[str] = []
    has_commit = mirrors._has_commit
    monkeypatch.setattr(
        mirrors, "_has_commit", lambda path, rev: looks.append(rev) or has_commit(path, rev)
    )
    lease = source.reserve(tmp_path / "workspaces")
    assert "one\n" == (lease.reset(source.resolve(sha)) / "a.txt").read_text()
    lease.release()
    assert [] == looks  # no `git cat-file` before the slot's worktree


def test_builds_side_by_side_find_a_spare_slot_made_while_they_run(
    tmp_path, git, commit, monkeypatch
):
    # The build that starts while another's slot is being tidied used to make
    # its own slot (a `git worktree add` before its first step); while two
    # builds run side by side, the worker makes it in the background.
    from polling import wait_for

    source, sha = _one_commit_source(tmp_path, git, commit)
    root = tmp_path / "workspaces"
    side_by_side = [source.reserve(root), source.reserve(root)]
    for lease in side_by_side:
        lease.reset(source.resolve(sha))
    wait_for(lambda: not getattr(source, "_sparing", False), "the spare slot")
    assert wait_for_tidying(30)
    # Checkouts made by this thread only: the third build's reset starts the
    # next spare slot's thread, whose own checkout may come at any moment.
    made: list[str] = []
    checkout = MirrorSource.checkout
    test_thread = threading.current_thread()

    def counted(self, *a, **k):
        if threading.current_thread() is test_thread:
            made.append(a[0])
        return checkout(self, *a, **k)

    monkeypatch.setattr(MirrorSource, "checkout", counted)
    third = source.reserve(root)
    assert "one\n" == (third.reset(sha) / "a.txt").read_text()
    assert [] == made
    for lease in [*side_by_side, third]:
        lease.release()
