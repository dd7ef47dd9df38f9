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

The fast way, for archives :func:`pack` wrote (marked in the pax global
header; entries live where only SauCI writes): GNU tar unpacks the whole
archive into an empty private directory beside the workspace, and each
top-level path is then moved in with one ``rename``, which never follows a
link at its destination. About 7x faster than the filtered way for a venv
(0.07 s against 0.5 s for 40 MiB). It is taken only when none of those
paths exists in the workspace yet; anything else (a merge, a foreign or
hand-made archive, no GNU tar, another filesystem) takes the filtered way.
What :func:`pack` writes is clean by construction: names from a walk of
real directories, only files, directories and links, no special mode bits,
no owners.
"""

from __future__ import annotations

import functools
import os
import shutil
import stat
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, BinaryIO

from sauci.core._cache_stage import gnu_extract, stage_beside

if TYPE_CHECKING:  # tarfile is imported where a cache is packed or unpacked
    import tarfile

__all__ = [
    "MARK",
    "ArchiveError",
    "gnu_program",
    "gnu_tar",
    "inside_root",
    "pack",
    "packed_by_sauci",
    "unpack",
]


MARK = "SAUCI.packed"  # in the pax global header of what pack() writes


class ArchiveError(OSError):
    """An archive that cannot be made or must not be unpacked."""


def inside_root(root: Path, relative: str) -> Path | None:
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


def pack(
    target: Path,
    roots: Mapping[str, Path],
    paths: Mapping[str, Sequence[str]],
    *,
    limit: int | None = None,
) -> int:
    """Write the ``paths`` of each root (``{"ws": workspace, "home": HOME}``)
    into the tar ``target``; returns how many paths existed to pack.

    With ``limit``, ArchiveError as soon as the archive would pass that many
    bytes: a step's sparse file (``truncate -s 1T``) costs the workspace
    nothing, and its archive would cost the server's disk its whole size
    before the cache store could refuse it for its size.
    """
    import tarfile  # only a step with a cache needs it (not an idle server)

    packed = 0
    with open(target, "wb") as raw:
        out: Any = raw if limit is None else _Capped(raw, limit)  # written, told: all tar needs
        with tarfile.open(
            fileobj=out, mode="w", format=tarfile.PAX_FORMAT, pax_headers={MARK: "1"}
        ) as tar:
            for name, root in roots.items():
                for relative in paths.get(name, ()):
                    source = inside_root(root, relative.strip("/"))
                    if source is None:
                        continue
                    arcname = f"{name}/{PurePosixPath(relative.strip('/'))}"
                    # lstat: links stay links
                    tar.add(source, arcname=arcname, recursive=True, filter=_clean)
                    packed += 1
    return packed


class _Capped:
    """A file written through, refusing what would take it past ``limit`` bytes."""

    def __init__(self, raw: BinaryIO, limit: int) -> None:
        self._raw, self._left = raw, limit

    def write(self, data: bytes) -> int:
        self._left -= len(data)
        if self._left < 0:
            raise ArchiveError("larger than the cache limit")
        return self._raw.write(data)

    def tell(self) -> int:
        return self._raw.tell()


def _clean(member: tarfile.TarInfo) -> tarfile.TarInfo | None:
    """Files, directories and links only; no set-id or sticky bits, no owners."""
    if not (member.isreg() or member.isdir() or member.issym() or member.islnk()):
        return None
    return member.replace(mode=member.mode & 0o777, uid=0, gid=0, uname="", gname="", deep=False)


def _member_filter(root: str):  # type: ignore[no-untyped-def]
    import tarfile

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
    if packed_by_sauci(source):
        fast = _unpack_moving(source, roots)
        if fast is not None:
            return fast
    import tarfile

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


def packed_by_sauci(source: Path) -> bool:
    """Whether :func:`pack` wrote ``source`` (its pax global header says so);
    ArchiveError when it is not a readable archive."""
    import tarfile

    try:
        with tarfile.open(source, "r:*") as tar:
            return tar.pax_headers.get(MARK) == "1"
    except (tarfile.TarError, OSError) as exc:
        raise ArchiveError(f"cannot unpack {source.name}: {exc}") from exc


@functools.cache
def gnu_program(name: str, marker: str) -> str | None:
    """``name``'s path when its ``--version`` says ``marker`` (the GNU build
    whose options SauCI uses), else None (another build, or none)."""
    found = shutil.which(name)
    if found is None:
        return None
    try:
        version = subprocess.run(
            [found, "--version"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except OSError:
        return None
    return found if marker in version else None


def gnu_tar() -> str | None:
    """GNU tar's path, or None where ``tar`` is another (or none)."""
    return gnu_program("tar", "GNU tar")


def _unpack_moving(source: Path, roots: Mapping[str, Path]) -> int | None:
    """Unpack with GNU tar into a private directory beside the first root, then
    move each top-level path into its root; None when that cannot be done
    cleanly (the caller takes the filtered way)."""
    tar = gnu_tar()
    first = next(iter(roots.values()), None)
    if tar is None or first is None:
        return None
    with stage_beside(first, f".{first.name}.cache-") as stage:
        if stage is None:
            return None
        try:
            listed = gnu_extract(tar, source, stage, listing=True)
            if listed is None:
                return None
            moves = []
            for name, root in roots.items():
                top = stage / name
                if not top.is_dir():
                    continue
                for child in sorted(os.listdir(top)):
                    if os.path.lexists(root / child):
                        return None  # a merge: the filtered way
                    moves.append((top / child, root / child))
            for origin, destination in moves:
                destination.parent.mkdir(parents=True, exist_ok=True)
                os.rename(
                    origin, destination
                )  # a link at the destination is replaced, not followed
            return sum(
                1
                for line in listed.splitlines()
                if line.partition("/")[0] in roots and line.partition("/")[2].strip("/")
            )
        except (OSError, subprocess.SubprocessError):
            return None
