"""Mirrors: repositories known by URL, cloned once and fetched after.

:class:`MirrorCache` keeps a bare mirror per repository under one root;
:class:`MirrorSource` is the :class:`sauci.typing.Source` of a mirrored
repository. Everything here is the server's (``sauci run`` builds a local
checkout and never imports this module), so it goes through GitPython
(:mod:`sauci.source.objects`): ``Remote.fetch`` with its timeout that ends
git's helpers too, commits and files read as objects, the clone's URL checked
for unsafe helpers; worktrees and submodules are ``git.cmd.Git`` calls.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import git

from sauci._logging import get_logger
from sauci.exceptions import SourceError, SourceUnavailableError
from sauci.source.gitcmd import GIT_ENV, is_full_sha, is_hex_sha
from sauci.source.gitrepo import is_remote, repo_id
from sauci.source.objects import commit_of, file_at, git_error, has_commit, open_repo, resolve
from sauci.source.workspaces import tidy_in_background
from sauci.typing import Commit

__all__ = ["MirrorCache", "MirrorSource", "MirrorWorkspace"]

log = get_logger(__name__)


# `git worktree add` tries, when a half-made worktree beside it makes it fail.
_ADD_TRIES = 4


def _has_commit(mirror: Path, sha: str) -> bool:
    with open_repo(mirror) as repo:
        return has_commit(repo, sha)


def _command(cwd: Path | None = None, *config: str) -> git.Git:
    """``git.cmd.Git`` in ``cwd``, in SauCI's environment, with ``-c`` settings ``config``."""
    command = git.Git(cwd)
    command.update_environment(**GIT_ENV)
    return command(c=list(config)) if config else command


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
    def _locked(self, mirror: Path, *, shared: bool = False) -> Iterator[None]:
        """The mirror's lock: exclusive to clone, fetch or prune it; ``shared``
        to add a worktree (``git worktree add`` takes a directory of its own
        under the mirror and locks it until it is made, so adds may run side by
        side, one tried again when it read the other's half-made `commondir`;
        a prune, which could take a half-made one, may not)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(mirror.with_suffix(".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _source(self, url_or_path: Path | str) -> str:
        location = os.fspath(url_or_path)
        if is_remote(location):
            return location
        return str(Path(location).expanduser().resolve())

    def mirror(self, url_or_path: Path | str, *, having: str | None = None) -> Path:
        """The up-to-date mirror of a repository: cloned on first use, fetched after.

        ``having`` (a hex sha): what the caller looks for. When the mirror
        has that commit once this call holds the lock (another build cloned
        or fetched it meanwhile: two slots of a worker start on a new
        repository at once), it is neither cloned nor fetched again.
        """
        mirror = self.path_for(url_or_path)
        with self._locked(mirror):
            if having is None or not (mirror / "HEAD").exists() or not _has_commit(mirror, having):
                self._update(url_or_path, mirror)
        return mirror

    def _update(self, url_or_path: Path | str, mirror: Path) -> None:
        source = self._source(url_or_path)
        if (mirror / "HEAD").exists():
            with open_repo(mirror) as repo:
                try:
                    fetched = repo.remotes.origin.fetch(prune=True, kill_after_timeout=self.timeout)
                except git.GitCommandError as exc:
                    raise git_error(exc) from exc
                except (git.GitError, ValueError) as exc:  # no origin, a line GitPython cannot read
                    raise SourceError(f"fetching {source} into {mirror} failed: {exc}") from exc
            log.debug("mirror_fetched", repo=source, mirror=str(mirror), refs=len(fetched))
            return
        # Clone beside the final name and rename, so a clone that dies half
        # way never passes for a mirror.
        log.info("mirror_clone", repo=source, mirror=str(mirror))
        shutil.rmtree(mirror, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(dir=self.root, prefix=f".{mirror.name}."))
        try:
            # git.Git's clone, not Repo.clone_from: that one has no timeout.
            git.Git.check_unsafe_protocols(source)
            _command().clone(
                "--mirror", "--quiet", "--", source, str(tmp), kill_after_timeout=self.timeout
            )
            os.rename(tmp, mirror)
        except git.GitCommandError as exc:
            raise git_error(exc) from exc
        except git.GitError as exc:  # an ext:: helper, git not installed
            raise SourceError(f"cannot clone {source}: {exc}") from exc
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def checkout(
        self, url_or_path: Path | str, sha: str, dest: Path | str, *, known: bool = False
    ) -> Path:
        """Make ``dest`` a fresh detached worktree of the mirror at ``sha``, with submodules.

        Fetches first when the mirror does not have ``sha`` yet (``known``:
        the caller saw the mirror have it, and a mirror only gains commits,
        so it is not looked for again). LFS files are not fetched.
        """
        if not is_hex_sha(sha):
            raise SourceUnavailableError(f"{sha!r} is not a commit sha")
        dest = Path(dest)
        mirror = self.path_for(url_or_path)
        # A mirror appears whole (a clone is renamed into place): a commit it
        # was seen to have needs no look, nor the lock a fetch takes.
        if not (known and (mirror / "HEAD").exists()) or dest.exists():
            with self._locked(mirror):
                if not (mirror / "HEAD").exists() or not (known or _has_commit(mirror, sha)):
                    self._update(url_or_path, mirror)
                    present = _has_commit(mirror, sha)
                else:
                    present = True  # no second look when the first found it
                if not present:
                    raise SourceUnavailableError(
                        f"{sha} is not a commit in {self._source(url_or_path)}"
                    )
                if dest.exists():
                    self._remove(mirror, dest)
        # The two slots of a worker make their first worktrees at once.
        with self._locked(mirror, shared=True):
            dest.parent.mkdir(parents=True, exist_ok=True)
            for attempt in range(_ADD_TRIES):
                try:
                    _command(mirror).worktree("add", "--quiet", "--detach", str(dest), sha)
                    break
                except git.GitCommandError as exc:
                    # Another add beside this one had made its worktree's
                    # `commondir` and not yet written it: git reads every
                    # worktree's and gives up ("failed to read
                    # worktrees/X/commondir"). It is written a moment later.
                    if attempt + 1 < _ADD_TRIES and "commondir" in str(exc.stderr):
                        log.info("worktree_add_retried", repo=str(mirror), error=str(exc.stderr))
                        time.sleep(0.01 * (attempt + 1))
                        continue
                    raise git_error(exc) from exc
        if (dest / ".gitmodules").exists():
            # Under the mirror's own lock: submodule URLs live in its config,
            # which all of its worktrees share.
            with self._locked(mirror):
                self._submodules(dest)
        return dest

    def _submodules(self, dest: Path) -> None:
        # git's submodule command, not GitPython's Submodule objects: it syncs
        # URLs, recurses, and keeps git's protocol.file.allow rule.
        config = ["protocol.file.allow=always"] if self.allow_file_submodules else []
        try:
            # sync first: a URL changed in .gitmodules since an earlier checkout
            # must win over the one "init" recorded then. (A ``-c`` setting of
            # git.Git holds for one command: one Git per command.)
            _command(dest, *config).submodule("sync", "--quiet", "--recursive")
            _command(dest, *config).submodule(
                "update", "--init", "--recursive", "--quiet", kill_after_timeout=self.timeout
            )
        except git.GitCommandError as exc:
            raise git_error(exc) from exc

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
                _command(mirror).worktree("prune")
            except git.GitCommandError as exc:
                log.warning("worktree_prune_failed", repo=str(mirror), error=str(exc))


class MirrorSource:
    """The :class:`sauci.typing.Source` of a repository known by URL, backed by a
    :class:`MirrorCache`.

    A sha the mirror already has is used without a fetch; a ref (or a sha it
    lacks) fetches first, so a build sees the latest push. Each build gets a
    workspace of its own (:class:`MirrorWorkspace`), deleted when it ends:
    submodules make a worktree of a mirror costly to reset in place.
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
            raise SourceUnavailableError(f"{rev!r} is not a commit in {self.repo}")
        mirror = self.mirror_path
        known = (mirror / "HEAD").exists() and is_hex_sha(rev) and _has_commit(mirror, rev)
        if known and is_full_sha(rev):
            return rev  # a worker's usual case (the server sent the sha): one git call, not two
        if not known:
            mirror = self.cache.mirror(self.repo, having=rev if is_hex_sha(rev) else None)
        with open_repo(mirror) as repo:
            return resolve(repo, rev, name=self.repo)

    def current_ref(self) -> str:
        """Always "": a mirror has no checked-out branch."""
        return ""

    def commit(self, rev: str = "HEAD", *, with_ref: bool = False) -> Commit:
        """Sha, author and message of a commit (after :meth:`resolve` fetched it).

        A mirror has no checked-out branch: ``ref`` is always "" (``with_ref``
        is accepted for GitSource's signature)."""
        sha = self.resolve(rev)
        with open_repo(self.mirror_path) as repo:
            return commit_of(repo, sha)

    def resolve_commit(self, rev: str = "HEAD") -> Commit:
        """:meth:`commit`, which resolves ``rev`` itself."""
        return self.commit(rev)

    def read_file(self, sha: str, path: str) -> str | None:
        """The text of the plain file ``path`` at ``sha`` (fetched first when the
        mirror lacks it); a symbolic link is a SourceError."""
        sha = self.resolve(sha)
        with open_repo(self.mirror_path) as repo:
            return file_at(repo, sha, path)

    def checkout(self, sha: str, dest: Path, *, known: bool = False) -> Path:
        """Make ``dest`` a fresh detached worktree of the mirror at ``sha`` (``known``:
        the mirror was seen to have it)."""
        return self.cache.checkout(self.repo, sha, dest, known=known)

    def remove(self, dest: Path) -> None:
        """Remove a workspace made by :meth:`checkout`."""
        self.cache.remove(self.repo, dest)

    def reserve(self, root: Path) -> MirrorWorkspace:
        """A new directory under ``root`` for one build: ``reset(sha)`` checks the
        commit out there, ``release()`` deletes it."""
        root.mkdir(parents=True, exist_ok=True)
        path = Path(tempfile.mkdtemp(dir=root, prefix=f"{repo_id(self.repo)}-m"))
        return MirrorWorkspace(self, path)


class MirrorWorkspace:
    """A :class:`sauci.typing.Workspace` made for one build from a mirror."""

    def __init__(self, source: MirrorSource, path: Path) -> None:
        self.source = source
        self.path = path
        self._released = False

    def reset(self, sha: str) -> Path:
        """Check ``sha`` out at :attr:`path` (with submodules), replacing what is there."""
        return self.source.checkout(sha, self.path)

    def release(self, *, tidy: bool = False) -> None:
        """Delete the workspace and the mirror's record of it: with ``tidy`` (the
        build is over) in the background, so that the worker's slot is free for
        its next build at once (a tree's deletion and a ``git worktree prune``)."""
        if not self._released:
            self._released = True
            if tidy:
                tidy_in_background(self.path, lambda: self.source.remove(self.path))
            else:
                self.source.remove(self.path)
