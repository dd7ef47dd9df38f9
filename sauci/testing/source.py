"""``SourceConformance``: the promises every Source keeps, as a pytest mixin.

Subclass it in a class named ``Test...`` and give it a ``make_source`` fixture,
which turns the path of a local git work tree (the suite makes and commits to
it) into the Source under test::

    class TestMySource(SourceConformance):
        @pytest.fixture
        def make_source(self, tmp_path):
            return lambda repo: MySource(f"file://{repo}", tmp_path / "cache")

Needs pytest and the ``git`` binary.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from sauci.exceptions import SourceError
from sauci.typing import Source, Workspace

__all__ = ["SourceConformance"]

_GIT = ["git", "-c", "user.name=Tess Ter", "-c", "user.email=tess@example.com"]


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run([*_GIT, *args], cwd=repo, check=True, capture_output=True, text=True)
    return done.stdout.strip()


def _commit(repo: Path, files: dict[str, str], message: str) -> str:
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", message)
    return _git(repo, "rev-parse", "HEAD")


def _tree(path: Path) -> dict[str, str]:
    return {
        str(p.relative_to(path)): p.read_text()
        for p in sorted(path.rglob("*"))
        if p.is_file() and ".git" not in p.relative_to(path).parts
    }


class SourceConformance:
    """Tests every Source must pass; not collected itself (no ``Test`` prefix)."""

    @pytest.fixture
    def upstream(self, tmp_path: Path) -> Path:
        """A work tree with two commits on ``main``: ``.sauci.yml`` and ``a.txt``."""
        repo = tmp_path / "upstream"
        repo.mkdir()
        _git(repo, "init", "-q", "-b", "main")
        _commit(repo, {".sauci.yml": "steps: {}\n", "a.txt": "one\n"}, "first")
        _commit(repo, {"a.txt": "two\n", "b/c.txt": "c\n"}, "second\n\nwith a body")
        return repo

    @pytest.fixture
    def source(self, make_source: Callable[[Path], Source], upstream: Path) -> Source:
        return make_source(upstream)

    def test_satisfies_the_protocol(self, source: Source, tmp_path: Path) -> None:
        assert isinstance(source, Source)
        lease = source.reserve(tmp_path / "workspaces")
        try:
            assert isinstance(lease, Workspace)
        finally:
            lease.release()

    def test_resolve_names_the_commit_a_branch_is_at_now(
        self, source: Source, upstream: Path
    ) -> None:
        assert _git(upstream, "rev-parse", "main") == source.resolve("refs/heads/main")
        newer = _commit(upstream, {"a.txt": "three\n"}, "third")
        assert newer == source.resolve("refs/heads/main")
        first = _git(upstream, "rev-parse", "main~2")
        assert first == source.resolve(first)

    def test_resolve_commit_reads_author_and_message(self, source: Source, upstream: Path) -> None:
        commit = source.resolve_commit("refs/heads/main")
        expected = (_git(upstream, "rev-parse", "main"), "", "Tess Ter <tess@example.com>")
        assert expected == (commit.sha, commit.ref, commit.author)
        assert "second\n\nwith a body" == commit.message

    @pytest.mark.parametrize("rev", ["no-such-branch", "-p", "--output=/tmp/x"])
    def test_an_unknown_revision_or_an_option_is_not_a_commit(
        self, source: Source, rev: str
    ) -> None:
        with pytest.raises(SourceError, match="is not a commit in"):
            source.resolve(rev)
        with pytest.raises(SourceError, match="is not a commit in"):
            source.resolve_commit(rev)

    def test_read_file_reads_a_file_at_a_commit(self, source: Source, upstream: Path) -> None:
        first = _git(upstream, "rev-parse", "main~1")
        assert "one\n" == source.read_file(first, "a.txt")
        assert "c\n" == source.read_file(source.resolve("refs/heads/main"), "b/c.txt")
        assert None is source.read_file(first, "b/c.txt")
        assert None is source.read_file(first, "../upstream/a.txt")

    def test_read_file_never_follows_a_symbolic_link(self, source: Source, upstream: Path) -> None:
        os.symlink("/etc/passwd", upstream / "linked.yml")
        sha = _commit(upstream, {}, "a link")
        with pytest.raises(SourceError, match="symbolic link"):
            source.read_file(source.resolve(sha), "linked.yml")

    def test_a_workspace_is_exactly_the_tree_of_a_commit(
        self, source: Source, upstream: Path, tmp_path: Path
    ) -> None:
        root = tmp_path / "workspaces"
        first = _git(upstream, "rev-parse", "main~1")
        second = source.resolve("refs/heads/main")
        lease = source.reserve(root)
        try:
            path = lease.reset(second)
            assert lease.path == path
            assert {".sauci.yml": "steps: {}\n", "a.txt": "two\n", "b/c.txt": "c\n"} == _tree(path)
            (path / "left-by-a-step.txt").write_text("x")
        finally:
            lease.release(tidy=True)
        lease = source.reserve(root)
        try:
            path = lease.reset(first)
            assert {".sauci.yml": "steps: {}\n", "a.txt": "one\n"} == _tree(path)
        finally:
            lease.release()
            lease.release()  # a second release changes nothing
