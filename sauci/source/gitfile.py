"""One file at a commit of a local repository, read with the ``git`` binary.

What a server reads without a workspace (a dispatcher's pipeline file, the
cron trigger's workflow): ``git ls-tree`` says what the path is at the
commit, ``git cat-file`` gives the blob. Two short processes instead of
GitPython's import (2.9 MB and 62 modules kept in a server for good) and its
long-lived ``cat-file --batch`` pair; repositories known by URL keep
GitPython for their mirrors (:mod:`sauci.source.objects`).
"""

from __future__ import annotations

import stat
from pathlib import Path

from sauci.exceptions import SourceError, SourceUnavailableError
from sauci.source.gitcmd import run_git

__all__ = ["file_at_commit"]


def file_at_commit(repo: Path | str, sha: str, path: str) -> str | None:
    """The text of the plain file ``path`` at commit ``sha`` (a full sha); None when
    the commit has nothing there (or a directory, or a submodule). A symbolic
    link is a SourceError: the server never follows a link a pusher committed.
    The path is literal (no pathspec magic, no glob); one that no tree entry
    can have (absolute, empty, ``.`` or ``..`` parts) is None without asking."""
    if path.startswith("/") or any(part in ("", ".", "..") for part in path.split("/")):
        return None
    try:
        listing = run_git(
            "--literal-pathspecs",
            "ls-tree",
            "-z",
            "--full-tree",
            f"{sha}^{{commit}}",
            "--",
            path,
            cwd=repo,
        )
    except SourceError as exc:
        raise SourceUnavailableError(f"{sha!r} is not a commit in {repo}") from exc
    for entry in listing.split("\0"):
        info, _, name = entry.partition("\t")
        if name != path:
            continue
        mode, kind, obj = info.split(" ", 2)
        if stat.S_ISLNK(int(mode, 8)):
            raise SourceError(f"{path} is a symbolic link at {sha[:12]}; SauCI reads only a file")
        if kind != "blob":
            return None
        return run_git("cat-file", "blob", obj, cwd=repo)
    return None
