"""Cache archives: the cached paths of a step packed into one uncompressed tar,
and unpacked safely into the next build's workspace.

Uncompressed because what builds cache (venvs, wheels, pip's own cache) is
mostly compressed already or cheap to store, and gzip would cost more time
than the disk it saves. Members are ``ws/<path>`` (the workspace) and
``home/<path>`` (the build's HOME). Symlinks are kept as symlinks (a venv's
``bin/python`` is one), never followed when packing; unpacking uses
:func:`tarfile.data_filter`, which refuses ``..``, absolute names, devices
and any member whose destination resolves outside its root (through a link
in the archive or one already in the workspace), with one relaxation: a
symlink may point anywhere, since a link is harmless until something is
written through it, and writing through one is what the filter refuses.
"""

from __future__ import annotations

import os
import stat
import tarfile
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath

__all__ = ["ArchiveError", "pack", "unpack"]


class ArchiveError(OSError):
    """An archive that cannot be made or must not be unpacked."""


def _inside(root: Path, relative: str) -> Path | None:
    """``root/relative`` when every directory on the way is a real directory
    (not a symlink) inside ``root``; None when the path does not exist."""
    parts = PurePosixPath(relative).parts
    current = root
    for i, part in enumerate(parts):
        if part in ("", ".", "..") or "/" in part:
            raise ArchiveError(f"cache path {relative!r} leaves its root")
        current = current / part
        try:
            st = os.lstat(current)
        except FileNotFoundError:
            return None
        if i < len(parts) - 1 and not stat.S_ISDIR(st.st_mode):
            # A symlinked directory on the way could lead anywhere on the host.
            raise ArchiveError(f"cache path {relative!r}: {part!r} is not a directory")
    return current


def pack(target: Path, roots: Mapping[str, Path], paths: Mapping[str, Sequence[str]]) -> int:
    """Write the ``paths`` of each root (``{"ws": workspace, "home": HOME}``)
    into the tar ``target``; returns how many paths existed to pack."""
    packed = 0
    with tarfile.open(target, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, root in roots.items():
            for relative in paths.get(name, ()):
                source = _inside(root, relative.strip("/"))
                if source is None:
                    continue
                arcname = f"{name}/{PurePosixPath(relative.strip('/'))}"
                tar.add(source, arcname=arcname, recursive=True)  # lstat: links stay links
                packed += 1
    return packed


def _member_filter(root: str):  # type: ignore[no-untyped-def]
    uid, gid = os.geteuid(), os.getegid()

    def check(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo:
        if member.issym():
            # The name is checked as data_filter checks it; the target is kept.
            tarfile.data_filter(member.replace(linkname="", deep=False), dest)
            safe = member
        else:
            safe = tarfile.data_filter(member, dest)
        return safe.replace(uid=uid, gid=gid, uname="", gname="", deep=False)

    return check


def unpack(source: Path, roots: Mapping[str, Path]) -> int:
    """Unpack ``source`` into ``roots``; members of a root not given are
    skipped. Returns the number of members written; ArchiveError for a
    member the filter refuses (what was written before it stays)."""
    written = 0
    try:
        with tarfile.open(source, "r:*") as tar:
            for member in tar:
                top, _, rest = member.name.partition("/")
                root = roots.get(top)
                if root is None or not rest:
                    continue
                root.mkdir(parents=True, exist_ok=True)
                inner = member.replace(name=rest, deep=False)
                if inner.islnk():
                    # Hard links name their target by its archive name.
                    link_top, _, link_rest = inner.linkname.partition("/")
                    if link_top != top:
                        raise ArchiveError(f"hard link {member.name!r} crosses roots")
                    inner = inner.replace(linkname=link_rest, deep=False)
                tar.extract(inner, root, set_attrs=True, filter=_member_filter(str(root)))
                written += 1
    except (tarfile.TarError, OSError) as exc:
        if isinstance(exc, ArchiveError):
            raise
        raise ArchiveError(f"cannot unpack {source.name}: {exc}") from exc
    return written
