"""Put the artifacts of earlier steps into a step's workspace at their own paths.

For ``Step.artifacts_from`` (GitLab's artifacts passed on by stage order,
``needs`` and ``dependencies``): before the step runs, the files each named
step kept (``artifacts``) are copied into its workspace at the paths they
were collected from, in the order named, a later one replacing an earlier
one's file, as GitLab's runner extracts a job's dependencies' archives. Only
steps the step needs (directly or not) are taken: the others may not have
ended. A step that kept nothing (it failed before, or matched no file) gives
nothing, as in GitLab.

The workspace may be shared with steps still running, which may have put a
symlink where this writes: every directory is opened relative to its
parent's descriptor with ``O_NOFOLLOW`` (a link or a file in the way is
removed and a real directory made), and every file is created with
``O_EXCL`` after whatever was at its name is removed, so nothing is ever
written through a link out of the workspace.
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

from sauci._logging import get_logger

__all__ = ["unpack_into"]

log = get_logger(__name__)

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def _clear(parent: int, name: str) -> os.stat_result | None:
    """What is at ``name``; a non-directory there is removed (None then)."""
    try:
        st = os.stat(name, dir_fd=parent, follow_symlinks=False)
    except FileNotFoundError:
        return None
    if stat.S_ISDIR(st.st_mode):
        return st
    os.unlink(name, dir_fd=parent)
    return None


def _open_dir(parent: int, name: str) -> int:
    """``name`` under ``parent`` as a real directory (made when missing), opened."""
    if _clear(parent, name) is None:
        os.mkdir(name, 0o755, dir_fd=parent)
    return os.open(name, _DIR, dir_fd=parent)


def _copy(source: Path, target: int) -> int:
    count = 0
    for entry in os.scandir(source):
        if entry.is_dir(follow_symlinks=False):
            fd = _open_dir(target, entry.name)
            try:
                count += _copy(Path(entry.path), fd)
            finally:
                os.close(fd)
        elif entry.is_file(follow_symlinks=False):
            if _clear(target, entry.name) is not None:  # a directory where the file goes
                shutil.rmtree(entry.name, dir_fd=target)
            out = os.open(entry.name, _NEW, 0o644, dir_fd=target)
            with open(entry.path, "rb") as src, os.fdopen(out, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
            st = os.stat(entry.path)
            os.utime(entry.name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=target)
            count += 1
    return count


def unpack_into(workspace: Path, sources: list[Path]) -> int:
    """Copy each artifact directory of ``sources`` (in order) over ``workspace``;
    returns the files copied."""
    count = 0
    root = os.open(workspace, _DIR)
    try:
        for source in sources:
            if source.is_dir():
                count += _copy(source, root)
    finally:
        os.close(root)
    return count
