"""Handing a workspace to the uid its steps run as (when SauCI is root).

:func:`adopt_workspace` walks a directory and gives every file to the step's
uid; :func:`hand_over` does so once per build and again only after SauCI
itself wrote into the directory, which it does at known places: the checkout
(before a build's first step, which always walks in full) and, between
steps, a cache restore (into the workspace and the build's HOME) or the
artifacts a step is given; the executor then calls the sandbox's
``workspace_written`` hook. Files a step writes are its uid's already. A
step that runs as SauCI's own uid (the local sandbox) may leave files that
are not, so its run counts as a write too.
"""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

from sauci._logging import get_logger

__all__ = [
    "adopt_workspace",
    "forget_hand_over",
    "hand_over",
    "hand_over_tools",
    "workspace_written",
]

log = get_logger(__name__)


def adopt_workspace(workspace: Path, uid: int, gid: int) -> int:
    """Give every file of ``workspace`` to ``uid:gid``; returns how many changed.

    Walks with directory file descriptors and never follows a symlink, so a
    step running at the same time in this workspace cannot redirect the walk
    to files outside it. Files with more than one hard link are left alone:
    the other link may be outside (a git object shared with the clone cache),
    and giving it away would let a step change it.
    """
    changed = skipped = 0
    top = os.lstat(workspace)
    if top.st_uid != uid or top.st_gid != gid:
        os.chown(workspace, uid, gid, follow_symlinks=False)
        changed += 1
    for _, dirs, files, dirfd in os.fwalk(workspace, follow_symlinks=False):
        for name in (*dirs, *files):
            try:
                st = os.lstat(name, dir_fd=dirfd)
            except FileNotFoundError:
                continue
            if st.st_uid == uid and st.st_gid == gid:
                continue
            if not stat.S_ISDIR(st.st_mode) and st.st_nlink > 1:
                skipped += 1
                continue
            os.chown(name, uid, gid, dir_fd=dirfd, follow_symlinks=False)
            changed += 1
    if skipped:
        log.info("workspace_files_not_adopted", workspace=str(workspace), hard_linked=skipped)
    return changed


class _Handed:
    """One directory's hand-over: bumped by every write of SauCI's into it
    (``epoch``), and who it was last handed to whole at which epoch."""

    __slots__ = ("done", "epoch")

    def __init__(self) -> None:
        self.epoch = 0
        self.done: tuple[str, int, int, int] | None = None  # (build, uid, gid, epoch)


class _HandOvers:
    """The directories handed whole to a step's uid, so that a build's later
    steps do not walk them again. Kept for the whole process, not per
    sandbox: steps of one build may run in different sandboxes, handed to
    different uids (the uid is in the record)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._dirs: dict[str, _Handed] = {}

    def adopt(self, path: Path, uid: int, gid: int, build: str, check_top: bool) -> int:
        key = os.path.abspath(path)
        with self._lock:
            record = self._dirs.setdefault(key, _Handed())
            epoch = record.epoch
            known = record.done == (build, uid, gid, epoch)
        if known and _still_theirs(key, uid, gid, check_top):
            return 0
        changed = adopt_workspace(path, uid, gid)
        with self._lock:
            if record.epoch == epoch:  # nothing was written into it meanwhile
                record.done = (build, uid, gid, epoch)
        return changed

    def written(self, path: Path) -> None:
        with self._lock:
            record = self._dirs.get(os.path.abspath(path))
            if record is not None:
                record.epoch += 1
                record.done = None

    def forget(self, path: Path) -> None:
        with self._lock:
            self._dirs.pop(os.path.abspath(path), None)


_HANDED = _HandOvers()


def _still_theirs(path: str, uid: int, gid: int, children: bool) -> bool:
    """``path`` is still a directory of ``uid:gid`` (and, with ``children``,
    so is everything directly in it)."""
    try:
        st = os.lstat(path)
        if not stat.S_ISDIR(st.st_mode) or (st.st_uid, st.st_gid) != (uid, gid):
            return False
        if children:
            with os.scandir(path) as entries:
                for entry in entries:
                    est = entry.stat(follow_symlinks=False)
                    if (est.st_uid, est.st_gid) != (uid, gid):
                        return False
    except OSError:
        return False
    return True


def hand_over(path: Path, uid: int, gid: int, build: str | None) -> int:
    """:func:`adopt_workspace` of ``path`` unless it was handed whole to
    ``uid:gid`` for the same ``build`` and SauCI has not written into it since
    (:func:`workspace_written`); returns how many files changed. Without a
    ``build`` (a sandbox run outside an executor) it always walks: nobody says
    when SauCI writes."""
    if build is None:
        return adopt_workspace(path, uid, gid)
    return _HANDED.adopt(path, uid, gid, build, check_top=False)


def hand_over_tools(path: Path, uid: int, gid: int) -> int:
    """The repository's pip/uv download cache (``SAUCI_CACHE_DIR``) handed to
    ``uid:gid``: walked in full once per process, then only when the
    directory or anything directly in it is not theirs. Steps write inside
    it as their uid; all SauCI writes there are the directories it makes at
    its top (``cache_env``: ``pip``, ``uv``, made again after an eviction
    emptied it), and they are what that check sees."""
    return _HANDED.adopt(path, uid, gid, "", check_top=True)


def workspace_written(path: Path) -> None:
    """SauCI wrote into ``path``: its next hand-over walks it in full."""
    _HANDED.written(path)


def forget_hand_over(path: Path) -> None:
    """The build in ``path`` ended (its slot may serve another build next)."""
    _HANDED.forget(path)
