"""Mirrors: repositories known by URL, cloned once and fetched after.

:class:`MirrorCache` keeps a bare mirror per repository under one root;
:class:`MirrorSource` gives a mirrored repository the interface of a
:class:`sauci.source.git.GitSource` (resolve, commit, checkout, remove). Like
:mod:`sauci.source.git`, it calls the ``git`` binary: clone, fetch and worktree are
each one git command.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from sauci._logging import get_logger
from sauci.exceptions import SourceError
from sauci.source.git import _HEX, Commit, _git, is_remote, repo_id

__all__ = ["MirrorCache", "MirrorSource"]

log = get_logger(__name__)


def _has_commit(repo: Path, sha: str) -> bool:
    try:
        _git("cat-file", "-e", f"{sha}^{{commit}}", cwd=repo)
    except SourceError:
        return False
    return True


class MirrorCache:
    """Bare mirrors of the repositories SauCI builds, and worktrees made from them.

    The first use of a repository is a ``git clone --mirror`` into
    ``root/<repo_id>.git``; every later use is a ``git fetch --prune``, so only
    new objects travel. Workspaces are detached worktrees of the mirror: a
    checkout, not a clone. A lock file per mirror keeps two builds of the same
    repository from fetching into it at once (also across processes).

    ``allow_file_submodules`` lets submodules use local paths and file://
    URLs. git refuses them by default since 2.38.1 (CVE-2022-39253): a
    repository you build could otherwise name any repository on this machine
    as its submodule and read it into the workspace. Allow it only for
    repositories you trust, such as your own local ones.
    """

    def __init__(
        self,
        root: Path | str,
        *,
        timeout: float = 600.0,
        allow_file_submodules: bool = False,
    ) -> None:
        self.root = Path(root)
        self.timeout = timeout
        self.allow_file_submodules = allow_file_submodules

    def path_for(self, url_or_path: Path | str) -> Path:
        """Where the mirror of ``url_or_path`` lives (whether or not it exists yet)."""
        return self.root / f"{repo_id(url_or_path)}.git"

    @contextlib.contextmanager
    def _locked(self, mirror: Path) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(mirror.with_suffix(".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _source(self, url_or_path: Path | str) -> str:
        location = os.fspath(url_or_path)
        if is_remote(location):
            return location
        return str(Path(location).expanduser().resolve())

    def mirror(self, url_or_path: Path | str) -> Path:
        """The up-to-date mirror of a repository: cloned on first use, fetched after."""
        mirror = self.path_for(url_or_path)
        with self._locked(mirror):
            self._update(url_or_path, mirror)
        return mirror

    def _update(self, url_or_path: Path | str, mirror: Path) -> None:
        source = self._source(url_or_path)
        if (mirror / "HEAD").exists():
            log.debug("mirror_fetch", repo=source, mirror=str(mirror))
            _git("fetch", "--prune", "--quiet", "origin", cwd=mirror, timeout=self.timeout)
            return
        # Clone beside the final name and rename, so a clone that dies half
        # way never passes for a mirror.
        log.info("mirror_clone", repo=source, mirror=str(mirror))
        shutil.rmtree(mirror, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(dir=self.root, prefix=f".{mirror.name}."))
        try:
            _git("clone", "--mirror", "--quiet", "--", source, str(tmp), timeout=self.timeout)
            os.rename(tmp, mirror)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def checkout(self, url_or_path: Path | str, sha: str, dest: Path | str) -> Path:
        """Make ``dest`` a fresh detached worktree of the mirror at ``sha``, with submodules.

        Fetches first when the mirror does not have ``sha`` yet. LFS files
        are not fetched.
        """
        if not re.fullmatch(_HEX, sha):
            raise SourceError(f"{sha!r} is not a commit sha")
        dest = Path(dest)
        mirror = self.path_for(url_or_path)
        with self._locked(mirror):
            if not (mirror / "HEAD").exists() or not _has_commit(mirror, sha):
                self._update(url_or_path, mirror)
            if not _has_commit(mirror, sha):
                raise SourceError(f"{sha} is not a commit in {self._source(url_or_path)}")
            if dest.exists():
                self._remove(mirror, dest)
            dest.parent.mkdir(parents=True, exist_ok=True)
            _git("worktree", "add", "--quiet", "--detach", str(dest), sha, cwd=mirror)
            if (dest / ".gitmodules").exists():
                # Still under the lock: submodule URLs live in the mirror's
                # config, which all of its worktrees share.
                self._submodules(dest)
        return dest

    def _submodules(self, dest: Path) -> None:
        config = ["-c", "protocol.file.allow=always"] if self.allow_file_submodules else []
        # sync first: a URL changed in .gitmodules since an earlier checkout
        # must win over the one "init" recorded then.
        _git(*config, "submodule", "sync", "--quiet", "--recursive", cwd=dest)
        _git(
            *config,
            "submodule",
            "update",
            "--init",
            "--recursive",
            "--quiet",
            cwd=dest,
            timeout=self.timeout,
        )

    def remove(self, url_or_path: Path | str, dest: Path | str) -> None:
        """Remove a workspace made by :meth:`checkout` and the mirror's record of it."""
        mirror = self.path_for(url_or_path)
        with self._locked(mirror):
            self._remove(mirror, Path(dest))

    @staticmethod
    def _remove(mirror: Path, dest: Path) -> None:
        # git refuses "worktree remove" for a worktree with submodules, so
        # delete the directory and let git forget worktrees whose directory
        # is gone (that also drops the submodules' repositories).
        shutil.rmtree(dest, ignore_errors=True)
        if mirror.exists():
            try:
                _git("worktree", "prune", cwd=mirror)
            except SourceError as exc:
                log.warning("worktree_prune_failed", repo=str(mirror), error=str(exc))


class MirrorSource:
    """GitSource's interface for a repository known by URL, backed by a :class:`MirrorCache`.

    The runner treats both alike: ``resolve``, ``commit``, ``checkout`` and
    ``remove``. A sha the mirror already has is used without a fetch; a ref
    (or a sha it lacks) fetches first, so a build sees the latest push.
    """

    def __init__(self, repo: str, root: Path | str, *, cache: MirrorCache | None = None) -> None:
        self.repo = repo
        self.cache = cache if cache is not None else MirrorCache(root)

    @property
    def mirror_path(self) -> Path:
        return self.cache.path_for(self.repo)

    def resolve(self, rev: str = "HEAD") -> str:
        """The full sha of ``rev`` (a sha, a ref or a branch name) in the repository."""
        if rev.startswith("-"):  # never let a revision pass for an option
            raise SourceError(f"{rev!r} is not a commit in {self.repo}")
        mirror = self.mirror_path
        known = (mirror / "HEAD").exists() and re.fullmatch(_HEX, rev) and _has_commit(mirror, rev)
        if not known:
            mirror = self.cache.mirror(self.repo)
        try:
            return _git("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}", cwd=mirror).strip()
        except SourceError as exc:
            raise SourceError(f"{rev!r} is not a commit in {self.repo}") from exc

    def current_ref(self) -> str:
        """Always "": a mirror has no checked-out branch."""
        return ""

    def commit(self, rev: str = "HEAD", *, with_ref: bool = False) -> Commit:
        """Sha, author and message of a commit (after :meth:`resolve` fetched it).

        A mirror has no checked-out branch: ``ref`` is always "" (``with_ref``
        is accepted for GitSource's signature)."""
        sha = self.resolve(rev)
        out = _git("show", "-s", "--format=%H%x00%an <%ae>%x00%B", sha, "--", cwd=self.mirror_path)
        sha, author, message = [*out.split("\x00", 2), "", ""][:3]
        return Commit(sha=sha.strip(), ref="", author=author, message=message.strip())

    def resolve_commit(self, rev: str = "HEAD") -> Commit:
        """:meth:`commit`, which resolves ``rev`` itself (GitSource's interface)."""
        return self.commit(rev)

    def checkout(self, sha: str, dest: Path) -> Path:
        """Make ``dest`` a fresh detached worktree of the mirror at ``sha``."""
        return self.cache.checkout(self.repo, sha, dest)

    def remove(self, dest: Path) -> None:
        """Remove a workspace made by :meth:`checkout`."""
        self.cache.remove(self.repo, dest)
