"""Source: read repositories and make per-build workspaces at an exact commit.

The hot path (``sauci run``: resolve HEAD, add a worktree, remove it) calls the
``git`` binary directly: importing GitPython costs about 70 ms, most of the
100 ms budget of ``sauci run``, and GitPython shells out to the same binary for
these operations anyway. Richer reads (commit metadata for the UI, mirrors
and fetches in ``sauci serve``) use GitPython, imported when first needed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import attrs

from sauci._logging import get_logger
from sauci.exceptions import SourceError

__all__ = ["Commit", "GitSource", "find_repo_root"]

log = get_logger(__name__)

# git must never prompt or read the user's terminal from inside SauCI.
_GIT_ENV = {"GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true", "LC_ALL": "C"}


@attrs.frozen(kw_only=True)
class Commit:
    sha: str
    ref: str
    author: str
    message: str


def _git(*args: str, cwd: Path | str | None = None) -> str:
    env = {**os.environ, **_GIT_ENV}
    try:
        proc = subprocess.run(
            ["git", *args],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            check=False,
        )
    except FileNotFoundError as exc:
        raise SourceError("git is not installed or not on PATH") from exc
    if proc.returncode != 0:
        err = proc.stderr.decode("utf-8", "replace").strip()
        raise SourceError(f"git {' '.join(args)} failed in {cwd}: {err}")
    return proc.stdout.decode("utf-8", "replace")


def find_repo_root(path: Path | str) -> Path:
    """The top of the git work tree containing ``path``; SourceError if none."""
    path = Path(path)
    if not path.exists():
        raise SourceError(f"{path} does not exist")
    try:
        return Path(_git("rev-parse", "--show-toplevel", cwd=path).strip())
    except SourceError as exc:
        raise SourceError(f"{path} is not inside a git repository") from exc


class GitSource:
    """Workspaces for one local repository, as detached git worktrees.

    A worktree shares the repository's object store, so making one costs a
    checkout, not a clone.
    """

    def __init__(self, repo: Path | str) -> None:
        self.repo = find_repo_root(repo)

    def resolve(self, rev: str = "HEAD") -> str:
        """The full sha of ``rev``."""
        try:
            return _git("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}", cwd=self.repo).strip()
        except SourceError as exc:
            raise SourceError(f"{rev!r} is not a commit in {self.repo}") from exc

    def current_ref(self) -> str:
        """The checked-out branch as a full ref, or "" when HEAD is detached."""
        try:
            return _git("symbolic-ref", "-q", "HEAD", cwd=self.repo).strip()
        except SourceError:
            return ""

    def commit(self, rev: str = "HEAD") -> Commit:
        """Sha, author and message of a commit (one git call)."""
        out = _git("show", "-s", "--format=%H%x00%an <%ae>%x00%B", rev, "--", cwd=self.repo)
        sha, author, message = (out.split("\x00", 2) + ["", ""])[:3]
        return Commit(sha=sha.strip(), ref=self.current_ref(), author=author, message=message.strip())

    def checkout(self, sha: str, dest: Path) -> Path:
        """Make ``dest`` a fresh detached worktree at ``sha``."""
        if dest.exists():
            self.remove(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        _git("worktree", "add", "--quiet", "--detach", str(dest), sha, cwd=self.repo)
        return dest

    def remove(self, dest: Path) -> None:
        """Remove a workspace made by :meth:`checkout` (and its worktree entry)."""
        try:
            _git("worktree", "remove", "--force", "--force", str(dest), cwd=self.repo)
        except SourceError:
            # Not a registered worktree any more (or never was): plain delete,
            # then let git forget entries whose directory is gone.
            shutil.rmtree(dest, ignore_errors=True)
            try:
                _git("worktree", "prune", cwd=self.repo)
            except SourceError as exc:
                log.warning("worktree_prune_failed", repo=str(self.repo), error=str(exc))
