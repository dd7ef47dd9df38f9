"""Branch names from a form, checked by git's own rules, and whether a registered
repository has the branch.

A branch name typed into the Trigger form is untrusted: it is handed to git
only as ``refs/heads/<name>``, an argument that cannot be read as an option,
after ``git check-ref-format`` accepted it and a leading ``-`` was refused (git
refuses such branch names too).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

__all__ = ["BranchError", "branch_exists", "branch_ref"]

# Long enough for a ls-remote over a slow network; short enough not to hold a
# server thread for long.
GIT_TIMEOUT = 20.0


class BranchError(ValueError):
    """A branch name git would refuse, or git could not be asked."""


def _git(*args: str, cwd: str | Path | None = None) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true", "LC_ALL": "C"}
    try:
        return subprocess.run(
            ["git", *args],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=GIT_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise BranchError(f"git did not answer in {GIT_TIMEOUT:.0f} s") from exc
    except OSError as exc:
        raise BranchError(f"cannot run git: {exc.strerror or exc}") from exc


def branch_ref(name: str) -> str:
    """``refs/heads/<name>`` for a branch name (or a ``refs/heads/`` ref), if git accepts it."""
    name = name.strip()
    short = name.removeprefix("refs/heads/")
    if not short:
        raise BranchError("a branch name is required")
    if name.startswith("refs/") and not name.startswith("refs/heads/"):
        raise BranchError(f"{name!r} is not a branch (only refs/heads/... can be triggered)")
    if short.startswith("-") or "\x00" in short or len(short) > 255:
        raise BranchError(f"{short!r} is not a valid branch name")
    ref = f"refs/heads/{short}"
    if _git("check-ref-format", ref).returncode != 0:
        raise BranchError(f"{short!r} is not a valid branch name")
    return ref


def branch_exists(location: str, ref: str, *, mirror: Path | None = None) -> bool:
    """Whether the repository at ``location`` (a path or a URL) has the branch ``ref``.

    ``ref`` must come from :func:`branch_ref`. A repository known by URL is
    looked up in its ``mirror`` first (a bare clone kept by the server, as of
    its last fetch), then asked with ``git ls-remote``.
    """
    if not ref.startswith("refs/heads/"):
        raise BranchError(f"{ref!r} is not a branch ref")
    if os.path.isdir(location):
        found = _git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", cwd=location)
        return found.returncode == 0
    if mirror is not None and (mirror / "HEAD").is_file():
        found = _git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", cwd=mirror)
        if found.returncode == 0:
            return True
    listed = _git("ls-remote", "--exit-code", "--heads", "--end-of-options", location, ref)
    if listed.returncode == 2:  # --exit-code: the remote answered, without that ref
        return False
    if listed.returncode != 0:
        reason = listed.stderr.decode(errors="replace").strip().splitlines()
        raise BranchError(f"cannot list the branches of {location}: {reason[-1] if reason else ''}")
    return True
