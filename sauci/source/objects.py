"""A repository read through GitPython: commits (author, message), one file at a
commit, a remote's refs; git's errors become SourceError here.

These are the server's reads: the mirrors of repositories known by URL
(:mod:`sauci.source.mirrors`), a pipeline file read without a workspace
(``Source.read_file``), the poller's listing of a remote. GitPython parses
commits and trees itself, checks remote URLs and options (no ``ext::``
helper, no ``--upload-pack``), and its timeouts end a git command's helpers
too. Importing it costs about 50 ms, half of ``sauci run``'s budget, and
``sauci run`` needs none of this: :mod:`sauci.source.git` (a local
repository's worktrees, the HEAD commit of ``sauci run``) keeps to the git
binary through :mod:`sauci.source.gitcmd`.
"""

from __future__ import annotations

import contextlib
import stat
from collections.abc import Iterator
from pathlib import Path

import git
import gitdb.exc

from sauci.exceptions import SourceError, SourceUnavailableError
from sauci.source.gitcmd import GIT_ENV
from sauci.typing import Commit

__all__ = ["commit_of", "file_at", "git_error", "has_commit", "ls_remote", "open_repo", "resolve"]

# What GitPython raises for a bad object or name, a failed command, or a
# commit whose "encoding" header names no codec (LookupError).
_READ_ERRORS = (git.GitError, gitdb.exc.ODBError, ValueError, LookupError)


def git_error(exc: git.GitCommandError) -> SourceError:
    """A SourceError that says which git command failed and what git said."""
    command = exc.command if isinstance(exc.command, list) else [str(exc.command)]
    said = (exc.stderr or "").strip().removeprefix("stderr: ").strip("'").strip()
    return SourceError(f"{' '.join(map(str, command))} failed: {said or exc.status}")


@contextlib.contextmanager
def open_repo(path: Path | str) -> Iterator[git.Repo]:
    """The repository at ``path``, its git commands held to SauCI's environment
    (never a prompt); closed after, which ends GitPython's ``cat-file`` processes."""
    try:
        repo = git.Repo(path)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError) as exc:
        raise SourceUnavailableError(f"{path} is not a git repository") from exc
    repo.git.update_environment(**GIT_ENV)
    try:
        yield repo
    finally:
        repo.close()


def has_commit(repo: git.Repo, sha: str) -> bool:
    """Whether the commit ``sha`` (a hex sha, checked by the caller) is in ``repo``."""
    try:
        repo.git.cat_file("-e", f"{sha}^{{commit}}")
    except git.GitCommandError:
        return False
    return True


def resolve(repo: git.Repo, rev: str, *, name: object) -> str:
    """The full sha of commit ``rev`` in ``repo``; SourceError "is not a commit in <name>"."""
    if rev.startswith("-"):  # never let a revision pass for an option
        raise SourceUnavailableError(f"{rev!r} is not a commit in {name}")
    try:
        return str(repo.git.rev_parse("--verify", "--quiet", f"{rev}^{{commit}}")).strip()
    except git.GitCommandError as exc:
        raise SourceUnavailableError(f"{rev!r} is not a commit in {name}") from exc


def commit_of(repo: git.Repo, sha: str) -> Commit:
    """Author and message of commit ``sha`` (``ref`` is ""), parsed by GitPython."""
    try:
        commit = repo.commit(sha)
        author = f"{commit.author.name} <{commit.author.email}>"
        message = commit.message
    except _READ_ERRORS as exc:
        raise SourceUnavailableError(f"{sha!r} is not a commit in {repo.git_dir}") from exc
    if isinstance(message, bytes):
        message = message.decode("utf-8", "replace")
    # A NUL as U+FFFD, as the webhook's valid_text does: GitPython keeps it
    # (git show stops there) and PostgreSQL refuses it, which failed the build's update.
    author, message = author.replace("\x00", "\ufffd"), message.replace("\x00", "\ufffd")
    return Commit(sha=commit.hexsha, ref="", author=author, message=message.strip())


def file_at(repo: git.Repo, sha: str, path: str) -> str | None:
    """The text of the plain file ``path`` at commit ``sha``; None when the commit
    has nothing there (or a directory, or a submodule). A symbolic link is a
    SourceError: the server never follows a link a pusher committed."""
    try:
        tree = repo.commit(sha).tree
    except _READ_ERRORS as exc:
        raise SourceUnavailableError(f"{sha!r} is not a commit in {repo.git_dir}") from exc
    try:
        item = tree / path
    except KeyError:
        return None
    if stat.S_ISLNK(item.mode):
        raise SourceError(f"{path} is a symbolic link at {sha[:12]}; SauCI reads only a file")
    if item.type != "blob":
        return None
    data: bytes = item.data_stream.read()
    return data.decode("utf-8", "replace")


def ls_remote(
    location: str, *options: str, patterns: tuple[str, ...] = (), timeout: float | None = None
) -> list[tuple[str, str]]:
    """(object or symref, name) pairs of ``git ls-remote <options> -- <location> <patterns>``.

    ``location`` is a URL or a path; "--" keeps one named "-x" from being an
    option, and GitPython refuses ``ext::`` helpers and ``--upload-pack``.
    With ``--symref`` a pair is ``("ref: refs/heads/main", "HEAD")``.
    """
    command = git.Git()
    command.update_environment(**GIT_ENV)
    try:
        out = command.ls_remote(*options, "--", location, *patterns, kill_after_timeout=timeout)
    except git.GitCommandError as exc:
        raise git_error(exc) from exc
    except git.GitError as exc:  # an unsafe URL or option, git not installed
        raise SourceError(f"{location}: {exc}") from exc
    pairs = []
    for line in str(out).splitlines():
        sha, _, name = line.partition("\t")
        if name:
            pairs.append((sha, name))
    return pairs
