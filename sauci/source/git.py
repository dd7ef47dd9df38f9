"""GitSource: the :class:`sauci.typing.Source` of a local repository, whose
workspaces are its own worktrees (slots kept between builds).

``sauci run`` lives here (find the repository, read HEAD's commit, add a
worktree, remove it), so this module calls the ``git`` binary through
:mod:`sauci.source.gitcmd` and reads the HEAD and ref files itself: importing
GitPython costs about 50 ms, against a 120 ms budget for the whole run, and
for these operations it would start the same git processes. The one read a
server alone makes, a file at a commit (:meth:`GitSource.read_file`), goes
through :func:`sauci.source.gitfile.file_at_commit` (``git ls-tree`` and
``git cat-file``): a server with local repositories imports no GitPython.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Generic, TypeVar

from sauci._logging import get_logger
from sauci.exceptions import SourceError, SourceUnavailableError
from sauci.source.gitcmd import GitCommand, is_full_sha, ref_sha, run_git, worktree_lock
from sauci.source.gitfile import file_at_commit

# Finding and naming repositories live in gitrepo; they stay importable from here.
from sauci.source.gitrepo import _locate, find_repo_root, is_bare, is_remote, read_file, repo_id
from sauci.source.workspaces import Lease, reserve
from sauci.typing import Commit

__all__ = [
    "Commit",
    "GitSource",
    "Pending",
    "find_repo_root",
    "is_bare",
    "is_remote",
    "read_file",
    "repo_id",
]

log = get_logger(__name__)


T = TypeVar("T")


class Pending(Generic[T]):
    """Work on a workspace that git is doing in the background; :meth:`wait` for its end."""

    def __init__(self, finish: Callable[[], T], cleanup: Callable[[], None]) -> None:
        self._finish = finish
        self._cleanup = cleanup
        self._done = False

    def wait(self) -> T:
        """The result; raises what the work raised. Call it exactly once."""
        if self._done:
            raise RuntimeError("Pending.wait() called twice")
        self._done = True
        try:
            return self._finish()
        finally:
            self._cleanup()


def _show_args(rev: str) -> list[str]:
    return ["show", "-s", "--format=%H%x00%an <%ae>%x00%B", rev, "--"]


@contextlib.contextmanager
def _uninterrupted() -> Iterator[None]:
    """Ctrl-C (or SIGTERM, SIGHUP, which ``sauci run`` treats alike) during the
    block takes effect right after it (on the main thread, where Python runs
    its signal handlers), not half-way through."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.pthread_sigmask(
        signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
    )
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


_UNREAD = object()


class GitSource:
    """Workspaces for one local repository, as detached git worktrees.

    A worktree shares the repository's object store, so making one costs a
    checkout, not a clone.
    """

    def __init__(self, repo: Path | str, *, git_dir: Path | None = None) -> None:
        """``git_dir``: the repository's git directory when the caller already
        knows it (then ``repo`` is its work tree root, and git is not asked)."""
        if git_dir is None:
            self.repo, self.git_dir = _locate(repo)
        else:
            self.repo, self.git_dir = Path(repo), git_dir
        # A commit's author and message never change: kept by sha (bounded),
        # so a server building one commit many times asks git once.
        self._commits: dict[str, Commit] = {}
        # Nor does a file at a commit: (sha, path) -> text (bounded), so the
        # pipeline file a server reads before claiming costs git once per commit.
        self._files: dict[tuple[str, str], str | None] = {}

    @property
    def common_dir(self) -> Path:
        """The git directory shared by all worktrees (``git rev-parse --git-common-dir``)."""
        # A linked worktree's git directory names the common one in "commondir".
        try:
            pointer = (self.git_dir / "commondir").read_text().strip()
        except OSError:
            return self.git_dir
        return (self.git_dir / pointer).resolve()

    def resolve(self, rev: str = "HEAD") -> str:
        """The full sha of ``rev``."""
        if rev.startswith("-"):  # never let a revision pass for an option
            raise SourceUnavailableError(f"{rev!r} is not a commit in {self.repo}")
        if is_full_sha(rev):
            return rev  # already exact; a missing commit fails at checkout, with the same error
        # One git call that also keeps the commit, so that the next lookup of a
        # branch that has not moved (the claims', the gate's, the runner's) needs none.
        return self.resolve_commit(rev).sha

    def current_ref(self) -> str:
        """The checked-out branch as a full ref, or "" when HEAD is detached."""
        # The files back end keeps HEAD as a file ("ref: refs/heads/main", or a
        # sha when detached): reading it saves a git process. Anything else
        # (the reftable back end writes a placeholder there) asks git.
        head_file = self.git_dir / "HEAD"
        try:
            head = "" if head_file.is_symlink() else head_file.read_text(errors="replace").strip()
        except OSError:
            head = ""
        if head.startswith("ref: refs/") and not head.endswith("/.invalid"):
            return head[len("ref: ") :]
        if is_full_sha(head):
            return ""
        try:
            return run_git("symbolic-ref", "-q", "HEAD", cwd=self.repo).strip()
        except SourceError:
            return ""

    @classmethod
    def with_commit(cls, path: Path | str, rev: str = "HEAD") -> tuple[GitSource, Commit]:
        """``GitSource(path)`` and ``.commit(rev)``, their two git calls run at once."""
        show = GitCommand(_show_args(rev), cwd=path) if os.path.isdir(path) else None
        try:
            source = cls(path)
        except BaseException:
            if show is not None:
                show.proc.kill()
                show.proc.communicate()
            raise
        if show is None:
            return source, source.commit(rev)
        try:
            out = show.result()
        except SourceError as exc:  # no such commit, or one git cannot read: git's words
            said = str(exc).rsplit(": ", 1)[-1]
            raise SourceUnavailableError(
                f"{rev!r} is not a commit in {source.repo}: {said}"
            ) from exc
        return source, source._parse_commit(out, with_ref=True)

    def resolve_commit(self, rev: str = "HEAD") -> Commit:
        """:meth:`resolve` and :meth:`commit` (without ref) in one git call,
        or none: a full sha, or a branch whose loose ref file names a commit
        seen before, is answered from memory."""
        if rev.startswith("-"):  # never let a revision pass for an option
            raise SourceUnavailableError(f"{rev!r} is not a commit in {self.repo}")
        known = self._commits.get(self._branch_sha(rev) or "")
        if known is not None:
            return known
        try:
            out = run_git(*_show_args(f"{rev}^{{commit}}"), cwd=self.repo)
        except SourceError as exc:
            raise SourceUnavailableError(f"{rev!r} is not a commit in {self.repo}") from exc
        commit = self._parse_commit(out, with_ref=False)
        if len(self._commits) >= 256:
            self._commits.clear()
        self._commits[commit.sha] = commit
        return commit

    def _branch_sha(self, rev: str) -> str | None:
        """The sha ``rev`` names when that needs no git: a full sha, or a
        branch read from the repository's ref files; else None."""
        if is_full_sha(rev):
            return rev
        return ref_sha(self.common_dir, rev)

    def commit(self, rev: str = "HEAD", *, with_ref: bool = True) -> Commit:
        """Sha, author and message of a commit (one git call)."""
        return self._parse_commit(run_git(*_show_args(rev), cwd=self.repo), with_ref=with_ref)

    def _parse_commit(self, out: str, *, with_ref: bool) -> Commit:
        sha, author, message = [*out.split("\x00", 2), "", ""][:3]
        ref = self.current_ref() if with_ref else ""
        return Commit(sha=sha.strip(), ref=ref, author=author, message=message.strip())

    def checkout(self, sha: str, dest: Path) -> Path:
        """Make ``dest`` a fresh detached worktree at ``sha``."""
        return self.start_checkout(sha, dest).wait()

    def start_checkout(self, sha: str, dest: Path, *, no_checkout: bool = False) -> Pending[Path]:
        """:meth:`checkout` with git working in the background until ``wait()``;
        with ``no_checkout``, the worktree has no files and no index yet."""
        if dest.exists():
            self.remove(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        lock = contextlib.ExitStack()
        lock.enter_context(worktree_lock(self.repo))
        try:
            extra = ["--no-checkout"] if no_checkout else []
            command = GitCommand(
                ["worktree", "add", "--quiet", "--detach", *extra, str(dest), sha], cwd=self.repo
            )
        except BaseException:
            lock.close()
            raise

        def finish() -> Path:
            command.result()
            return dest

        return Pending(finish, lock.close)

    def remove(self, dest: Path) -> None:
        """Remove a workspace made by :meth:`checkout` (and its worktree entry)."""
        self.start_remove(dest).wait()

    def start_remove(self, dest: Path) -> Pending[None]:
        """:meth:`remove` with git working in the background until ``wait()``.

        A worktree that is exactly what :meth:`checkout` made (its ``.git``
        file and its entry under the repository's ``worktrees/`` name each
        other) is deleted directly, as ``git worktree remove --force`` would:
        its directory and then its entry, with no git process (~3 ms here).
        Anything else is left to git.
        """
        lock = contextlib.ExitStack()
        lock.enter_context(worktree_lock(self.repo))
        try:
            entry = self._worktree_entry(dest)
            command = (
                None
                if entry is not None
                else GitCommand(
                    ["worktree", "remove", "--force", "--force", str(dest)], cwd=self.repo
                )
            )
        except BaseException:
            lock.close()
            raise

        def finish() -> None:
            if entry is not None:
                try:
                    with _uninterrupted():  # the directory and its entry go together
                        try:
                            shutil.rmtree(dest)
                            shutil.rmtree(entry)
                        except KeyboardInterrupt:  # a signal already on its way: finish first
                            shutil.rmtree(dest, ignore_errors=True)
                            shutil.rmtree(entry, ignore_errors=True)
                            raise
                    return
                except OSError as exc:
                    log.info("worktree_delete_failed", workspace=str(dest), error=str(exc))
            try:
                if command is None:
                    run_git("worktree", "remove", "--force", "--force", str(dest), cwd=self.repo)
                else:
                    command.result()
            except SourceError:
                self._forget(dest)

        return Pending(finish, lock.close)

    def _worktree_entry(self, dest: Path) -> Path | None:
        """The entry under ``worktrees/`` of the plain worktree at ``dest``; else None."""
        try:
            git_file = dest / ".git"
            if git_file.is_symlink() or not git_file.is_file() or dest.is_symlink():
                return None
            text = git_file.read_text(errors="replace").strip()
            if not text.startswith("gitdir: "):
                return None
            entry = Path(text[len("gitdir: ") :])
            if entry.parent != self.common_dir / "worktrees" or (entry / "locked").exists():
                return None
            recorded = (entry / "gitdir").read_text(errors="replace").strip()
        except OSError:
            return None
        if os.path.realpath(recorded) != os.path.realpath(git_file):
            return None
        return entry

    def _forget(self, dest: Path) -> None:
        # Not a registered worktree any more (or never was): plain delete,
        # then let git forget entries whose directory is gone.
        shutil.rmtree(dest, ignore_errors=True)
        self._drop_unfinished_entry(dest)
        try:
            run_git("worktree", "prune", cwd=self.repo)
        except SourceError as exc:
            log.warning("worktree_prune_failed", repo=str(self.repo), error=str(exc))

    def _drop_unfinished_entry(self, dest: Path) -> None:
        """A ``git worktree add`` ended while it set ``dest`` up (Ctrl-C) leaves
        its entry under ``worktrees/`` locked "initializing", which ``git
        worktree prune`` never removes: remove it when nothing else uses it."""
        entry = self.common_dir / "worktrees" / dest.name
        try:
            if (entry / "locked").read_text(errors="replace").strip() != "initializing":
                return
            recorded = entry / "gitdir"
            if recorded.exists() and Path(recorded.read_text().strip()).parent != dest:
                return
        except OSError:
            return
        shutil.rmtree(entry, ignore_errors=True)

    # -- reused workspaces (sauci.source.workspaces) -------------------------------

    def acquire(self, sha: str, root: Path) -> Lease:
        """A workspace under ``root`` at ``sha``, reused from an earlier build when one is free.

        The same as :meth:`reserve` and then ``lease.reset(sha)``.
        """
        lease = self.reserve(root)
        try:
            lease.reset(sha)
        except BaseException:
            lease.release()
            raise
        return lease

    def reserve(self, root: Path) -> Lease:
        """Hold a free workspace slot under ``root``; ``lease.reset(sha)`` then checks
        it out. See :func:`sauci.source.workspaces.reserve`."""
        return reserve(self, root)

    def read_file(self, sha: str, path: str) -> str | None:
        """The text of the plain file ``path`` at commit ``sha``, None when there is
        none; a symbolic link is a SourceError (a server never follows one)."""
        # The git binary, as for the rest of a local repository: GitPython (2.9
        # MB, 62 modules) stays out of a server whose repositories are local.
        key = (self.resolve(sha), path)
        found = self._files.get(key, _UNREAD)
        if found is not _UNREAD:
            return found  # type: ignore[return-value]
        text = file_at_commit(self.repo, *key)
        if len(self._files) >= 256:
            self._files.clear()
        self._files[key] = text
        return text
