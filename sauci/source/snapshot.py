"""A copy of a working tree as it is on disk, for ``sauci run``: tracked files
as modified, untracked files that are not ignored, deleted files absent.

The files are those ``git ls-files -co --exclude-standard`` names (what act
and gitlab-ci-local run too). When the repository has a commit, the copy is a
detached worktree at HEAD made without a checkout, its index read from HEAD,
so that steps asking git (``git describe``, setuptools-scm) see the commit and
the changes on top of it; a repository with no commit yet gets a plain copy.

Symbolic links are copied as links and never followed, on either side: a
link to ``/etc`` in the working tree is a link to ``/etc`` in the copy, not
the contents of ``/etc``, and no file is read or written through a linked
directory.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import attrs

from sauci._logging import get_logger
from sauci.exceptions import SourceError
from sauci.source.gitcmd import GitCommand

if TYPE_CHECKING:
    from sauci.source.git import GitSource

__all__ = ["Snapshot", "copy_working_tree", "snapshot_workspace"]

log = get_logger(__name__)

_CHUNK = 1 << 20


@attrs.frozen(kw_only=True)
class Snapshot:
    """What :func:`copy_working_tree` copied."""

    files: int
    links: int
    size: int  # bytes of file contents
    # Whether the copy differs from HEAD (staged, unstaged or untracked
    # changes); True when there is no HEAD or git could not tell.
    changed: bool = True


def copy_working_tree(
    repo: Path, dest: Path, *, skip: Path | None = None, listed: GitCommand | None = None
) -> Snapshot:
    """Copy ``repo``'s working tree, as :mod:`this module <sauci.source.snapshot>`
    says, into ``dest``, which must exist and be empty but for a ``.git`` file.

    ``skip``: a directory whose files are never copied (the data directory,
    when it lies inside the repository). Nested repositories (submodules,
    untracked clones) are copied the same way, without their ``.git``.
    ``listed``: the ``git ls-files`` of ``repo`` already started.
    """
    counts = [0, 0, 0]
    skip = Path(skip) if skip else None
    _copy_repo(Path(repo), Path(dest), skip=skip, counts=counts, listed=listed)
    snapshot = Snapshot(files=counts[0], links=counts[1], size=counts[2])
    log.debug("working_tree_copied", repo=str(repo), dest=str(dest), files=snapshot.files)
    return snapshot


def _listed(repo: Path, out: GitCommand | None) -> list[str]:
    if out is None:
        out = GitCommand(["ls-files", "-co", "--exclude-standard", "-z"], cwd=repo)
    # The raw bytes: names are not always UTF-8, and -z keeps them unquoted.
    raw, err = out.proc.communicate()
    if out.proc.returncode != 0:
        message = err.decode("utf-8", "replace").strip()
        raise SourceError(f"git ls-files failed in {repo}: {message}")
    return [os.fsdecode(name) for name in raw.split(b"\0") if name]


def _copy_repo(
    repo: Path,
    dest: Path,
    *,
    skip: Path | None,
    counts: list[int],
    listed: GitCommand | None = None,
) -> None:
    real_dirs: set[str] = {""}  # relative directories checked to be no links, on both sides
    for name in sorted(set(_listed(repo, listed))):
        rel = name.rstrip("/")
        parts = rel.split("/")
        if not rel or rel.startswith("/") or any(p in ("", ".", "..", ".git") for p in parts):
            continue  # never from git; refused all the same
        src, dst = repo / rel, dest / rel
        if skip is not None and (src == skip or skip in src.parents):
            continue
        parent = "/".join(parts[:-1])
        if not _real_dir(repo, dest, parent, real_dirs):
            continue  # a directory replaced by a link since git listed it: not followed
        try:
            info = os.lstat(src)
        except FileNotFoundError:
            continue  # a tracked file deleted from the working tree
        if stat.S_ISLNK(info.st_mode):
            os.symlink(os.readlink(src), dst)
            counts[1] += 1
        elif stat.S_ISREG(info.st_mode):
            counts[2] += _copy_file(src, dst, info.st_mode)
            counts[0] += 1
        elif stat.S_ISDIR(info.st_mode) and (src / ".git").exists():
            os.mkdir(dst)  # a submodule or a repository inside this one
            real_dirs.add(rel)
            _copy_repo(src, dst, skip=skip, counts=counts)
        # FIFOs, sockets, devices: nothing to copy.


def _real_dir(repo: Path, dest: Path, rel: str, real_dirs: set[str]) -> bool:
    """Whether ``rel`` is a directory and no link in ``repo``; made in ``dest`` too."""
    if rel in real_dirs:
        return True
    parent = rel.rpartition("/")[0]
    if not _real_dir(repo, dest, parent, real_dirs):
        return False
    try:
        if not stat.S_ISDIR(os.lstat(repo / rel).st_mode):
            return False
    except OSError:
        return False
    try:
        os.mkdir(dest / rel)
    except FileExistsError:
        if not stat.S_ISDIR(os.lstat(dest / rel).st_mode):
            return False
    real_dirs.add(rel)
    return True


def _copy_file(src: Path, dst: Path, mode: int) -> int:
    """Copy one regular file, neither end through a link; the bytes copied."""
    nofollow = os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        sfd = os.open(src, os.O_RDONLY | os.O_NONBLOCK | nofollow)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ELOOP):
            return 0  # gone, or turned into a link, since it was listed
        raise SourceError(f"cannot read {src}: {exc.strerror}") from exc
    try:
        if not stat.S_ISREG(os.fstat(sfd).st_mode):
            return 0
        dfd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL | nofollow, stat.S_IMODE(mode))
        try:
            return _copy_bytes(sfd, dfd)
        finally:
            os.close(dfd)
    finally:
        os.close(sfd)


def _copy_bytes(sfd: int, dfd: int) -> int:
    total = 0
    try:
        while True:
            sent = os.sendfile(dfd, sfd, None, _CHUNK)
            if not sent:
                return total
            total += sent
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOSYS) or total:
            raise
    while chunk := os.read(sfd, _CHUNK):
        view = memoryview(chunk)
        while view:
            view = view[os.write(dfd, view) :]
        total += len(chunk)
    return total


def snapshot_workspace(
    source: GitSource,
    sha: str | None,
    dest: Path,
    *,
    skip: Path | None = None,
    meanwhile: Callable[[], object] | None = None,
) -> Snapshot:
    """``dest``: a copy of ``source``'s working tree; a detached worktree at
    ``sha`` (HEAD's commit) without a checkout under it, or a plain directory
    when ``sha`` is None (no commit yet). Remove it with ``source.remove``.

    ``meanwhile``: the caller's own work, done while the git processes run
    (``sauci run`` imports the pipeline reader then)."""
    if sha is None:
        dest.mkdir(parents=True)
        listed = GitCommand(["ls-files", "-co", "--exclude-standard", "-z"], cwd=source.repo)
        if meanwhile is not None:
            try:
                meanwhile()
            except BaseException:
                listed.proc.kill()
                listed.proc.communicate()
                raise
        return copy_working_tree(source.repo, dest, skip=skip, listed=listed)
    pending = source.start_checkout(sha, dest, no_checkout=True)
    started = [
        GitCommand(["ls-files", "-co", "--exclude-standard", "-z"], cwd=source.repo),
        # Whether there is anything to copy but HEAD (the build's record says
        # so); without optional locks, git does not refresh the user's index.
        GitCommand(["--no-optional-locks", "status", "--porcelain", "-z"], cwd=source.repo),
    ]
    try:
        if meanwhile is not None:
            try:
                meanwhile()
            except BaseException:
                with contextlib.suppress(Exception):
                    pending.wait()  # git's own lock and process are let go first
                raise
        pending.wait()
        # The index says HEAD, so git there sees the copied files as changes on it.
        started.append(GitCommand(["read-tree", sha], cwd=dest))
        files, status, index = started
        snapshot = copy_working_tree(source.repo, dest, skip=skip, listed=files)
        index.result()
    except BaseException:
        for command in started:
            if command.proc.poll() is None:
                command.proc.kill()
            command.proc.communicate()
        raise
    try:
        changed = bool(status.result().strip("\0"))
    except SourceError:
        return snapshot
    return attrs.evolve(snapshot, changed=changed)
