"""Cache entries kept unpacked, so that a hit is a tree of hard links.

Beside an entry's archive, ``<key>.tar``, its unpacked copy ``<key>.tree``
(members ``ws/...`` and ``home/...``, as in the archive) is made once, from
the archive, by GNU tar, with every write bit of its files removed. A
restore then makes the directories and symlinks afresh in a private
directory beside the workspace, hard-links each file (``cp -al``: one
process, no data copied) and moves each top-level path in with one
``rename``, as :func:`sauci.core.cache_archive.unpack`'s fast way does.
Between builds a spare linked copy, ``<key>.ready``, is made beside the
tree (:func:`link_copy`), and the next restore takes it whole with one
``rename`` instead of linking each file while its build waits.

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
from collections.abc import Mapping, Sequence
from pathlib import Path

from sauci._logging import get_logger
from sauci.core._cache_stage import gnu_extract, stage_beside
from sauci.core.cache_archive import gnu_program, gnu_tar, inside_root, packed_by_sauci

__all__ = [
    "LINK_CAPABILITY",
    "link_copy",
    "link_tree",
    "make_tree",
    "ready_path",
    "snapshot",
    "tree_path",
]

log = get_logger(__name__)

# The sandbox capability that makes linking safe (see the module's docstring).
LINK_CAPABILITY = "foreign_uid"


def tree_path(archive: Path) -> Path:
    """Where the unpacked copy of ``archive`` (``<key>.tar``) lives: ``<key>.tree``."""
    return archive.with_suffix(".tree")


def ready_path(entry: Path) -> Path:
    """Where the spare linked copy of the entry ``<key>.tar`` (or of its
    unpacked copy ``<key>.tree``) waits for a restore: ``<key>.ready``."""
    return entry.with_suffix(".ready")


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
    with stage_beside(archive, f".{tree.name}-") as stage:
        if stage is None:
            return None
        try:
            # umask: whatever SauCI's own, nothing comes out writable by others.
            if gnu_extract(tar, archive, stage, umask=0o022) is None:
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
    with stage_beside(first, f".{first.name}.cache-") as stage:
        if stage is None:
            return None
        try:
            source = _take_ready(tree, stage)
            for top, _root in wanted if source is None else ():
                failed = _copy_as_links(cp, top, stage / top.name)
                if failed is not None:  # another file system (EXDEV), an entry evicted meanwhile
                    log.info("cache_link_failed", tree=str(tree), error=failed)
                    return None
            source = stage if source is None else source
            moved: list[Path] = []
            try:
                for name, child, root in moves:
                    root.mkdir(parents=True, exist_ok=True)
                    os.rename(source / name / child, root / child)  # never follows a link there
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


def _take_ready(tree: Path, stage: Path) -> Path | None:
    """The spare linked copy of ``tree``, moved into the private ``stage``
    with one rename (so no other restore takes it too); None when there is
    none, or it is on another file system (the caller links from ``tree``).
    It is what ``cp -al`` of the tree would make now: the same files (the
    tree's, never written), directories made by SauCI in its own folder."""
    taken = stage / "ready"
    try:
        os.rename(ready_path(tree), taken)
    except OSError:
        return None
    return taken


def link_copy(tree: Path, dest: Path) -> bool:
    """Make ``dest``, a copy of ``tree`` as hard links (``cp -al`` into a
    private directory beside it, then one rename): the spare that the next
    :func:`link_tree` of ``tree`` takes. False when it cannot be made (no
    tree, no GNU cp, one there already); nothing is left behind then. The
    caller holds the repository's lock (:meth:`CacheStore.keep_ready`)."""
    cp = _gnu_cp()
    if cp is None or not tree.is_dir() or os.path.lexists(dest):
        return False
    with stage_beside(dest, f".{dest.name}-") as stage:
        if stage is None:
            return False
        try:
            for name in sorted(os.listdir(tree)):
                failed = _copy_as_links(cp, tree / name, stage / name)
                if failed is not None:
                    log.info("cache_ready_failed", tree=str(tree), error=failed)
                    return False
            os.rename(stage, dest)
        except (OSError, subprocess.SubprocessError) as exc:
            log.info("cache_ready_failed", tree=str(tree), error=str(exc))
            return False
    return True


def snapshot(
    stage: Path,
    roots: Mapping[str, Path],
    paths: Mapping[str, Sequence[str]],
    owner: int,
) -> int | None:
    """Make the unpacked copy of a step's cache paths in ``stage`` (an empty,
    private directory beside the entries) straight from the workspace, as
    hard links (``cp -al``: no data copied, no archive read back): the bytes
    of its files, 0 when no path exists; None when it cannot be made
    cleanly (the caller packs the archive and unpacks it as before).

    The files are the workspace's own, so they are taken from the step's
    uid (``owner``) and made SauCI's and read-only for everyone, in the
    workspace too: the build's later steps see them as a linked restore's
    (read, replace or delete; never write into). A file that is not the
    step's (not made by it: a link to another's file) stops it, so that
    nothing but the step's own files ever changes hands; so does anything
    but files, directories and symlinks, and another file system.
    """
    cp = _gnu_cp()
    if cp is None:
        return None
    for name, root in roots.items():
        for relative in paths.get(name, ()):
            source = inside_root(root, relative.strip("/"))  # ArchiveError: leaves its root
            if source is None:
                continue
            dest = stage / name / relative.strip("/")
            dest.parent.mkdir(parents=True, exist_ok=True)
            if os.path.lexists(dest):  # a path inside another: the archive's way
                return None
            failed = _copy_as_links(cp, source, dest)
            if failed is not None:  # another file system (EXDEV), a file gone meanwhile
                log.info("cache_snapshot_failed", path=str(source), error=failed)
                return None
    return _seal(stage, owner)


def _copy_as_links(cp: str, source: Path, dest: Path) -> bytes | None:
    """Copy ``source`` to ``dest`` with GNU ``cp -al`` (links stay links,
    modes kept, files are hard links; ``--no-preserve=ownership``: the
    directories are this process's): None when done, else the end of cp's
    error output."""
    done = subprocess.run(
        [cp, "-al", "--no-preserve=ownership", "--", str(source), str(dest)],
        capture_output=True,
        timeout=600,
        check=False,
    )
    return done.stderr[-300:] if done.returncode != 0 else None


def _seal(stage: Path, owner: int) -> int | None:
    """Give the step's files under ``stage`` to SauCI, read-only (see
    :func:`_read_only`), and clear set-id and sticky bits of the directories
    (made by ``cp``, SauCI's); about the bytes they take in an archive
    (512-byte blocks: a header and a pax header of two each, the data).
    None, with nothing changed, for
    a file not ``owner``'s or one that is neither a file, a directory nor a
    symlink. Paths are safe to use here: every directory under ``stage`` was
    made by ``cp`` in a directory only SauCI can reach."""
    files: dict[int, tuple[str, int, int]] = {}  # inode -> (a path, mode, size)
    folders = []
    headers = 0
    for folder, dirs, names, dirfd in os.fwalk(stage, follow_symlinks=False):
        headers += len(dirs) + len(names)
        for name in dirs:
            st = os.lstat(name, dir_fd=dirfd)
            if stat.S_ISDIR(st.st_mode) and st.st_mode & 0o7000:
                folders.append((os.path.join(folder, name), stat.S_IMODE(st.st_mode) & 0o777))
        for name in names:
            st = os.lstat(name, dir_fd=dirfd)
            if stat.S_ISLNK(st.st_mode):
                continue  # a link is never written through
            if not stat.S_ISREG(st.st_mode) or st.st_uid != owner:
                return None
            files.setdefault(st.st_ino, (os.path.join(folder, name), st.st_mode, st.st_size))
    uid, gid = os.geteuid(), os.getegid()
    for path, mode in folders:
        os.chmod(path, mode)
    total = headers * 3 * 512
    for path, mode, size in files.values():
        # chown first: the step can no longer chmod what it no longer owns.
        os.chown(path, uid, gid, follow_symlinks=False)
        owner_bits = mode & 0o500
        os.chmod(path, owner_bits | owner_bits >> 3 | owner_bits >> 6)
        total += -(-size // 512) * 512
    return total
