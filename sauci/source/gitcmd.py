"""The ``git`` binary as a process: one command with its environment and timeout,
branch shas read from the ref files, and the lock around worktree changes.

This is ``sauci run``'s path (find the repository, read HEAD, add and remove
a worktree) and the worktree slots' resets: one process each, which GitPython
would start the same way after 50 ms of importing itself. A file at a commit
is :mod:`sauci.source.gitfile`'s; a remote's objects and refs go through
GitPython (:mod:`sauci.source.objects`).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import subprocess
import tempfile
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

from sauci.exceptions import SourceError

__all__ = [
    "FULL_SHA",
    "GIT_ENV",
    "HEX_SHA",
    "GitCommand",
    "is_full_sha",
    "is_hex_sha",
    "ref_sha",
    "run_git",
    "worktree_lock",
]

# A full sha-1 as git writes it, and any hex sha a user may give (abbreviated,
# either case, sha-256): patterns for re.fullmatch.
FULL_SHA = r"[0-9a-f]{40}"
HEX_SHA = r"[0-9a-fA-F]{4,64}"


def is_full_sha(text: str) -> bool:
    """Whether ``text`` is a full sha as git writes it (40 lowercase hex digits)."""
    return re.fullmatch(FULL_SHA, text) is not None


def is_hex_sha(text: str) -> bool:
    """Whether ``text`` is a hex sha, full or abbreviated (never an option or a ref name)."""
    return re.fullmatch(HEX_SHA, text) is not None


# git must never prompt or read the user's terminal from inside SauCI.
GIT_ENV = {"GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true", "LC_ALL": "C"}


class GitCommand:
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


def run_git(*args: str, cwd: Path | str | None = None, timeout: float | None = None) -> str:
    """The output of ``git <args>``; SourceError when it fails or times out."""
    return GitCommand(args, cwd, timeout).result()


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
    return sha if is_full_sha(sha) else None


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
