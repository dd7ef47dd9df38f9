"""Finding and naming repositories: the root of a work tree (or a bare repository),
a stable short id for a path or URL, a remote told from a local path, one file at a revision."""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import urlsplit

from sauci.exceptions import SourceError, SourceUnavailableError
from sauci.source.gitcmd import run_git

__all__ = ["find_repo_root", "is_bare", "is_remote", "read_file", "repo_id"]

_SCP_LIKE = r"^(?P<user>[^@/:]+@)?(?P<host>[^/:]+):(?P<path>(?!//).*)$"
_UNSAFE = r"[^A-Za-z0-9._-]+"


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
    import hashlib  # OpenSSL's load, for the mirrors and slots that name a repository

    digest = hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()[:8]
    return f"{name}-{digest}"


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
        raise SourceUnavailableError(f"{path} does not exist")
    try:
        # One call answers the usual case, a work tree; --show-toplevel fails
        # in a bare repository (and inside a .git directory): then look again.
        out = run_git(
            "rev-parse", "--is-bare-repository", "--absolute-git-dir", "--show-toplevel", cwd=path
        ).split("\n")
        return Path(out[2].strip()), Path(out[1].strip())
    except SourceError:
        pass
    try:
        out = run_git("rev-parse", "--is-bare-repository", "--absolute-git-dir", cwd=path).split(
            "\n"
        )
    except SourceError as exc:
        raise SourceUnavailableError(f"{path} is not inside a git repository") from exc
    git_dir = Path(out[1].strip())
    if out[0].strip() == "true":
        return git_dir, git_dir
    return Path(run_git("rev-parse", "--show-toplevel", cwd=path).strip()), git_dir


def is_bare(repo: Path | str) -> bool:
    """True for a bare repository (one that receives pushes), False for a work tree.

    SourceError if ``repo`` is not a git repository.
    """
    path = Path(repo)
    if not path.is_dir():
        raise SourceUnavailableError(f"{path} does not exist or is not a directory")
    try:
        return run_git("rev-parse", "--is-bare-repository", cwd=path).strip() == "true"
    except SourceError as exc:
        raise SourceUnavailableError(f"{path} is not a git repository") from exc


def read_file(repo: str | Path, rev: str, path: str) -> str | None:
    """The text of ``path`` at ``rev`` in a local repository, or None when it is not there."""
    try:
        root = find_repo_root(repo)
        return run_git("show", f"{rev}:{path}", cwd=root)
    except SourceError:
        return None
