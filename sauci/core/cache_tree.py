"""Cache entries kept unpacked, so that a hit is a tree of hard links.

Beside an entry's archive, ``<key>.tar``, its unpacked copy ``<key>.tree``
(members ``ws/...`` and ``home/...``, as in the archive) is made once, from
the archive, by GNU tar, with every write bit of its files removed. A
restore then makes the directories and symlinks afresh in a private
directory beside the workspace, hard-links each file (``cp -al``: one
process, no data copied) and moves each top-level path in with one
``rename``, as :func:`sauci.core.cache_archive.unpack`'s fast way does.

A hard link is the cache's own file, so a write into it would change the
cache. The caller links only where a step cannot write into a file it does
not own and nobody may write: when its sandbox runs the step as a host uid
other than SauCI's, without capabilities (the namespace sandbox started by
root: capability ``foreign_uid``). There the linked files stay SauCI's
(the hand-over of a workspace to the step's uid skips files with more than
one link) and read-only; a step may still delete, rename or replace them
(its directories are its own), which is what pip and Python do. Anything
else (another sandbox, no GNU tools, another file system, a path already in
the workspace) returns None and the caller unpacks the archive.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path

from sauci._logging import get_logger
from sauci.core.cache_archive import gnu_program, gnu_tar, packed_by_sauci

__all__ = ["LINK_CAPABILITY", "link_tree", "make_tree", "tree_path"]

log = get_logger(__name__)

# The sandbox capability that makes linking safe (see the module's docstring).
LINK_CAPABILITY = "foreign_uid"


def tree_path(archive: Path) -> Path:
    """Where the unpacked copy of ``archive`` (``<key>.tar``) lives: ``<key>.tree``."""
    return archive.with_suffix(".tree")


def _gnu_cp() -> str | None:
    return gnu_program("cp", "GNU coreutils")


def make_tree(archive: Path) -> Path | None:
    """The unpacked, read-only copy of ``archive``, made now if missing;
    None when it cannot be made (not an archive SauCI packed, no GNU tar)."""
    tree = tree_path(archive)
    if tree.is_dir():
        return tree
    tar = gnu_tar()
    try:
        if tar is None or not packed_by_sauci(archive):
            return None
    except OSError:  # ArchiveError: not readable; the caller's unpack says why
        return None
    try:
        stage = Path(tempfile.mkdtemp(prefix=f".{tree.name}-", dir=archive.parent))
    except OSError:
        return None
    try:
        done = subprocess.run(
            [
                tar,
                "-xf",
                str(archive),
                "-C",
                str(stage),
                "--no-same-owner",
                "--no-same-permissions",
            ],
            capture_output=True,
            timeout=600,
            check=False,
            umask=0o022,  # whatever SauCI's own: nothing comes out writable by others
        )
        if done.returncode != 0:
            return None
        _read_only(stage)
        try:
            os.rename(stage, tree)
        except OSError:  # made meanwhile by another build: that one is as good
            return tree if tree.is_dir() else None
        return tree
    except (OSError, subprocess.SubprocessError) as exc:
        log.info("cache_tree_not_made", archive=str(archive), error=str(exc))
        return None
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _read_only(top: Path) -> None:
    """Make the files under ``top`` read-only for everyone, and readable (and
    executable) by everyone where their owner could read (execute) them: the
    step's uid is not their owner. Directories keep their modes: they are
    never linked, only made afresh in a workspace."""
    for folder, _, files, dirfd in os.fwalk(top, follow_symlinks=False):
        del folder
        for name in files:
            st = os.lstat(name, dir_fd=dirfd)
            if stat.S_ISREG(st.st_mode):
                owner = st.st_mode & 0o500
                os.chmod(name, owner | owner >> 3 | owner >> 6, dir_fd=dirfd)


def link_tree(tree: Path, roots: Mapping[str, Path]) -> list[Path] | None:
    """Hard-link ``tree``'s members into ``roots`` (``{"ws": workspace,
    "home": HOME}``; members of a root not given are left out). Returns the
    top-level paths that came in; None, with nothing written, when linking
    cannot be done cleanly (the caller unpacks the archive instead)."""
    cp = _gnu_cp()
    first = next(iter(roots.values()), None)
    if cp is None or first is None:
        return None
    wanted = [(tree / name, root) for name, root in roots.items() if (tree / name).is_dir()]
    moves = []
    for top, root in wanted:
        for child in sorted(os.listdir(top)):
            if os.path.lexists(root / child):
                return None  # a merge: the archive's filtered way
            moves.append((top.name, child, root))
    try:
        stage = Path(tempfile.mkdtemp(prefix=f".{first.name}.cache-", dir=first.parent))
    except OSError:
        return None
    try:
        for top, _root in wanted:
            # -a: links stay links, modes kept; -l: files are hard links.
            # --no-preserve=ownership: directories are this process's, then the step's.
            done = subprocess.run(
                [cp, "-al", "--no-preserve=ownership", "--", str(top), str(stage / top.name)],
                capture_output=True,
                timeout=600,
                check=False,
            )
            if done.returncode != 0:  # another file system (EXDEV), an entry evicted meanwhile
                log.info("cache_link_failed", tree=str(tree), error=done.stderr[-300:])
                return None
        moved: list[Path] = []
        try:
            for name, child, root in moves:
                root.mkdir(parents=True, exist_ok=True)
                os.rename(stage / name / child, root / child)  # never follows a link there
                moved.append(root / child)
        except OSError:
            for path in moved:  # all or nothing: the caller then unpacks into a clean root
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
            raise
        return moved
    except (OSError, subprocess.SubprocessError) as exc:
        log.info("cache_link_failed", tree=str(tree), error=str(exc))
        return None
    finally:
        shutil.rmtree(stage, ignore_errors=True)
