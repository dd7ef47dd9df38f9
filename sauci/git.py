"""Source: read repositories and make per-build workspaces at an exact commit.

The hot path (``sauci run``: resolve HEAD, add a worktree, remove it) calls the
``git`` binary directly: importing GitPython costs about 70 ms, most of the
100 ms budget of ``sauci run``, and GitPython shells out to the same binary for
these operations anyway. Mirrors (:mod:`sauci.mirrors`, for repositories
known by URL) call the binary too, for the same reason.
Richer reads (commit metadata for the UI) may use GitPython, imported when
first needed.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Generic, TypeVar
from urllib.parse import urlsplit

import attrs

from sauci._logging import get_logger
from sauci.exceptions import SourceError

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

if TYPE_CHECKING:
    from sauci.workspaces import Lease

log = get_logger(__name__)

T = TypeVar("T")


FULL_SHA = r"[0-9a-f]{40}"

# git must never prompt or read the user's terminal from inside SauCI.
GIT_ENV = {"GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true", "LC_ALL": "C"}


@attrs.frozen(kw_only=True)
class Commit:
    sha: str
    ref: str
    author: str
    message: str


class _GitCommand:
    """A git process started at once; :meth:`result` waits for it (SourceError on failure).

    Starting one and doing something else before asking for the result lets
    Python work while git does (``sauci run`` imports its engine meanwhile).
    """

    def __init__(
        self, args: Sequence[str], cwd: Path | str | None = None, timeout: float | None = None
    ) -> None:
        self.args = tuple(args)
        self.cwd = cwd
        self.timeout = timeout
        env = {**os.environ, **GIT_ENV}
        try:
            # A network command (fetch, ls-remote) starts helpers (ssh,
            # git-remote-https); with a timeout, git gets its own session so that
            # the whole group can be ended, not just git, leaving no pipe open.
            self.proc = subprocess.Popen(
                ["git", *self.args],
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=timeout is not None,
            )
        except FileNotFoundError as exc:
            raise SourceError("git is not installed or not on PATH") from exc

    def result(self) -> str:
        proc, args, timeout = self.proc, self.args, self.timeout
        try:
            out, err_bytes = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, 9)
            proc.communicate()
            raise SourceError(f"git {' '.join(args)} gave no answer within {timeout:g} s") from exc
        except BaseException:  # KeyboardInterrupt: do not leave git running
            proc.kill()
            proc.wait()
            raise
        if proc.returncode != 0:
            err = err_bytes.decode("utf-8", "replace").strip()
            raise SourceError(f"git {' '.join(args)} failed in {self.cwd}: {err}")
        return out.decode("utf-8", "replace")


def _git(*args: str, cwd: Path | str | None = None, timeout: float | None = None) -> str:
    return _GitCommand(args, cwd, timeout).result()


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


def ref_sha(git_dir: Path, ref: str) -> str | None:
    """The sha of branch ``ref`` (``refs/heads/...``) from its loose file, else
    from ``packed-refs``; None when git must be asked (reftable, no such
    branch, anything odd)."""
    if not ref.startswith("refs/heads/") or ref.endswith("/.invalid"):
        return None
    if ".." in ref or "//" in ref:
        return None
    try:
        sha = (git_dir / ref).read_text(errors="replace").strip()
    except FileNotFoundError:
        sha = _packed(git_dir, ref) or ""
    except OSError:
        return None
    return sha if re.fullmatch(FULL_SHA, sha) else None


def _packed(git_dir: Path, ref: str) -> str | None:
    try:
        with open(git_dir / "packed-refs", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                sha, _, name = line.rstrip("\n").partition(" ")
                if name == ref:
                    return sha
    except OSError:
        pass
    return None


_thread_locks: dict[str, threading.Lock] = {}
_thread_locks_guard = threading.Lock()


@contextlib.contextmanager
def worktree_lock(repo: Path) -> Iterator[None]:
    """Serialise worktree add/remove/prune on one repository.

    Concurrent builds of one repository (threads of a server, or a server and
    a ``sauci run``) otherwise race on git's worktree metadata: a prune can
    drop the entry of a worktree being added ("bad object"). A thread lock
    inside the process, an flock on a file named after the repository across
    processes.
    """
    key = str(repo)
    with _thread_locks_guard:
        lock = _thread_locks.setdefault(key, threading.Lock())
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    path = Path(tempfile.gettempdir()) / f"sauci-worktree-{digest}.lock"
    with lock, open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def is_remote(repo: str) -> bool:
    """Whether ``repo`` names a remote (a URL or scp-like ``[user@]host:path``),
    not a local path (one that exists, or has a slash before its colon)."""
    return "://" in repo or (bool(re.match(_SCP_LIKE, repo)) and not Path(repo).exists())


def find_repo_root(path: Path | str) -> Path:
    """The top of the git work tree containing ``path`` (the repository itself
    when it is bare); SourceError if none."""
    return _locate(path)[0]


def _locate(path: Path | str) -> tuple[Path, Path]:
    """(root as :func:`find_repo_root` says, git directory) of ``path``."""
    path = Path(path)
    if not path.exists():
        raise SourceError(f"{path} does not exist")
    try:
        # One call answers the usual case, a work tree; --show-toplevel fails
        # in a bare repository (and inside a .git directory): then look again.
        out = _git(
            "rev-parse", "--is-bare-repository", "--absolute-git-dir", "--show-toplevel", cwd=path
        ).split("\n")
        return Path(out[2].strip()), Path(out[1].strip())
    except SourceError:
        pass
    try:
        out = _git("rev-parse", "--is-bare-repository", "--absolute-git-dir", cwd=path).split("\n")
    except SourceError as exc:
        raise SourceError(f"{path} is not inside a git repository") from exc
    git_dir = Path(out[1].strip())
    if out[0].strip() == "true":
        return git_dir, git_dir
    return Path(_git("rev-parse", "--show-toplevel", cwd=path).strip()), git_dir


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
        if re.fullmatch(FULL_SHA, rev):
            return rev  # already exact; a missing commit fails at checkout, with the same error
        try:
            return _git(
                "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}", cwd=self.repo
            ).strip()
        except SourceError as exc:
            raise SourceError(f"{rev!r} is not a commit in {self.repo}") from exc

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
        if re.fullmatch(FULL_SHA, head):
            return ""
        try:
            return _git("symbolic-ref", "-q", "HEAD", cwd=self.repo).strip()
        except SourceError:
            return ""

    @classmethod
    def with_commit(cls, path: Path | str, rev: str = "HEAD") -> tuple[GitSource, Commit]:
        """``GitSource(path)`` and ``.commit(rev)``, their two git calls run at once."""
        show = _GitCommand(_show_args(rev), cwd=path) if os.path.isdir(path) else None
        try:
            source = cls(path)
        except BaseException:
            if show is not None:
                show.proc.kill()
                show.proc.communicate()
            raise
        if show is None:
            return source, source.commit(rev)
        return source, source._parse_commit(show.result(), with_ref=True)

    def resolve_commit(self, rev: str = "HEAD") -> Commit:
        """:meth:`resolve` and :meth:`commit` (without ref) in one git call,
        or none: a full sha, or a branch whose loose ref file names a commit
        seen before, is answered from memory."""
        if rev.startswith("-"):  # never let a revision pass for an option
            raise SourceError(f"{rev!r} is not a commit in {self.repo}")
        known = self._commits.get(self._branch_sha(rev) or "")
        if known is not None:
            return known
        try:
            out = _git(*_show_args(f"{rev}^{{commit}}"), cwd=self.repo)
        except SourceError as exc:
            raise SourceError(f"{rev!r} is not a commit in {self.repo}") from exc
        commit = self._parse_commit(out, with_ref=False)
        if len(self._commits) >= 256:
            self._commits.clear()
        self._commits[commit.sha] = commit
        return commit

    def _branch_sha(self, rev: str) -> str | None:
        """The sha ``rev`` names when that needs no git: a full sha, or a
        branch read from the repository's ref files; else None."""
        if re.fullmatch(FULL_SHA, rev):
            return rev
        return ref_sha(self.common_dir, rev)

    def commit(self, rev: str = "HEAD", *, with_ref: bool = True) -> Commit:
        """Sha, author and message of a commit (one git call)."""
        return self._parse_commit(_git(*_show_args(rev), cwd=self.repo), with_ref=with_ref)

    def _parse_commit(self, out: str, *, with_ref: bool) -> Commit:
        sha, author, message = [*out.split("\x00", 2), "", ""][:3]
        ref = self.current_ref() if with_ref else ""
        return Commit(sha=sha.strip(), ref=ref, author=author, message=message.strip())

    def checkout(self, sha: str, dest: Path) -> Path:
        """Make ``dest`` a fresh detached worktree at ``sha``."""
        return self.start_checkout(sha, dest).wait()

    def start_checkout(self, sha: str, dest: Path) -> Pending[Path]:
        """:meth:`checkout` with git working in the background until ``wait()``."""
        if dest.exists():
            self.remove(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        lock = contextlib.ExitStack()
        lock.enter_context(worktree_lock(self.repo))
        try:
            command = _GitCommand(
                ["worktree", "add", "--quiet", "--detach", str(dest), sha], cwd=self.repo
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
                else _GitCommand(
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
                    _git("worktree", "remove", "--force", "--force", str(dest), cwd=self.repo)
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
            _git("worktree", "prune", cwd=self.repo)
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

    # -- reused workspaces (sauci.workspaces) -------------------------------

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
        it out. See :func:`sauci.workspaces.reserve`."""
        from sauci.workspaces import reserve

        return reserve(self, root)


def is_bare(repo: Path | str) -> bool:
    """True for a bare repository (one that receives pushes), False for a work tree.

    SourceError if ``repo`` is not a git repository.
    """
    path = Path(repo)
    if not path.is_dir():
        raise SourceError(f"{path} does not exist or is not a directory")
    try:
        return _git("rev-parse", "--is-bare-repository", cwd=path).strip() == "true"
    except SourceError as exc:
        raise SourceError(f"{path} is not a git repository") from exc


_SCP_LIKE = r"^(?P<user>[^@/:]+@)?(?P<host>[^/:]+):(?P<path>(?!//).*)$"
_UNSAFE = r"[^A-Za-z0-9._-]+"
_HEX = r"[0-9a-fA-F]{4,64}"


def _normalize_location(location: str) -> tuple[str, str]:
    """(normalized key, path part) of a repository path or URL."""
    text = location.strip()
    if "://" in text:
        parts = urlsplit(text)
        if parts.scheme.lower() == "file":
            return _normalize_location(parts.path)
        # Hosting services treat "x" and "x.git" as one repository.
        path = parts.path.rstrip("/").removesuffix(".git")
        return f"{parts.scheme.lower()}://{parts.netloc.lower()}{path}", path
    match = re.match(_SCP_LIKE, text)
    if match and len(match.group("host")) > 1:  # "C:..." is a Windows drive, not a host
        path = match.group("path").rstrip("/").removesuffix(".git")
        return f"{match.group('user') or ''}{match.group('host').lower()}:{path}", path
    path = str(Path(text).expanduser().resolve())
    return path, path


def repo_id(path_or_url: Path | str) -> str:
    """A stable, file-system-safe short name for a repository, e.g. ``project-1a2b3c4d``.

    The readable part is the last path component without ``.git``; the hash of
    the normalized absolute path or URL keeps two "project" repositories apart.
    """
    key, path = _normalize_location(os.fspath(path_or_url))
    parts = [p for p in path.replace("\\", "/").split("/") if p]
    while parts and parts[-1] == ".git":  # /home/me/project/.git
        parts.pop()
    name = parts[-1].removesuffix(".git") if parts else ""
    name = re.sub(_UNSAFE, "_", name).strip("._")[:40] or "repo"
    digest = hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()[:8]
    return f"{name}-{digest}"


def read_file(repo: str | Path, rev: str, path: str) -> str | None:
    """The text of ``path`` at ``rev`` in a local repository, or None when it is not there."""
    try:
        root = find_repo_root(repo)
        return _git("show", f"{rev}:{path}", cwd=root)
    except SourceError:
        return None
