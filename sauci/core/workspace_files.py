"""Files of a workspace that match globs, found and opened without following a symlink.

Artifact and report globs come from the pipeline, and the workspace's files
from the build's own steps, which may still be running beside the server
reading them. So the server never walks through a symlink (``ln -s / root``
would make it walk the host), and opens each file relative to its directory's
descriptor with ``O_NOFOLLOW``, so that a file swapped for a symlink between
the walk and the open is refused rather than read.

Globs read as ``pathlib`` reads them: ``*``, ``?`` and ``[...]`` within one
path component, ``**`` for any number of components; a matching directory
stands for every file under it.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from fnmatch import fnmatchcase
from pathlib import Path, PurePosixPath
from typing import BinaryIO

__all__ = ["Match", "matching_files", "split_glob"]


def split_glob(pattern: str) -> tuple[str, ...] | None:
    """The components of a relative glob; None when it is absolute or climbs out (``..``)."""
    parts = PurePosixPath(pattern).parts
    if not parts or parts[0] == "/" or ".." in parts:
        return None
    return tuple(p for p in parts if p != ".")


def _match(parts: Sequence[str], pats: Sequence[str]) -> bool:
    """Whether the path ``parts`` matches the glob ``pats`` whole."""
    if "**" not in pats:  # one component each: no state to carry
        return len(parts) == len(pats) and all(map(fnmatchcase, parts, pats))
    return len(pats) in _states_after(parts, pats)


def _prefix_matches(parts: Sequence[str], pats: Sequence[str]) -> bool:
    """Whether some non-empty leading part of the path ``parts`` matches ``pats`` whole."""
    return _states_after(parts, pats, stop_at_match=True) is _MATCHED


_MATCHED: frozenset[int] = frozenset({-1})


def _states_after(
    parts: Sequence[str], pats: Sequence[str], *, stop_at_match: bool = False
) -> frozenset[int]:
    """The positions in ``pats`` that the path ``parts`` can reach.

    One pass over the path with the set of positions still possible (at most
    ``len(pats) + 1``), so a match costs components x pattern parts calls of
    fnmatch at most. Trying each way a ``**`` could stretch instead is
    exponential: a pushed ``**/a/**/a/...`` over a step's ``a/a/a/...``
    would keep the server's thread busy for ever. With ``stop_at_match``,
    :data:`_MATCHED` as soon as a non-empty prefix matches whole.
    """
    end = len(pats)

    def closure(states: set[int]) -> frozenset[int]:
        todo = list(states)
        while todo:  # "**" may stand for no component: its next position too
            j = todo.pop()
            if j < end and pats[j] == "**" and j + 1 not in states:
                states.add(j + 1)
                todo.append(j + 1)
        return frozenset(states)

    states = closure({0})
    for part in parts:
        after: set[int] = set()
        for j in states:
            if j == end:
                continue
            if pats[j] == "**":
                after.add(j)  # one more component under the "**"
            elif fnmatchcase(part, pats[j]):
                after.add(j + 1)
        if not after:
            return frozenset()
        states = closure(after)
        if stop_at_match and end in states:
            return _MATCHED
    return states


def _may_hold(parts: Sequence[str], pats: Sequence[str]) -> bool:
    """Whether a match of ``pats`` may lie at or under the directory ``parts``."""
    if not parts:
        return True
    if not pats:
        return False
    if pats[0] == "**":
        return True
    return fnmatchcase(parts[0], pats[0]) and _may_hold(parts[1:], pats[1:])


class Match:
    """A regular file (or, with ``is_link``, a symlink) found under a matching
    path; :meth:`open` reads a file safely."""

    def __init__(self, relative: str, dir_fd: int, name: str, *, is_link: bool = False) -> None:
        self.relative = relative  # "reports/junit.xml", with "/" separators
        self.is_link = is_link  # reported, never followed
        self._dir_fd = dir_fd
        self._name = name

    @contextmanager
    def open(self) -> Iterator[BinaryIO]:
        """The file, opened without following a symlink; OSError if it is no longer regular."""
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
        fd = os.open(self._name, flags, dir_fd=self._dir_fd)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise OSError(f"{self.relative} is not a regular file")
            with os.fdopen(fd, "rb", closefd=False) as fh:
                yield fh
        finally:
            os.close(fd)


def matching_files(
    root: Path,
    patterns: Sequence[Sequence[str]],
    *,
    directories: bool = True,
    links: bool = False,
) -> Iterator[Match]:
    """Every regular file under ``root`` matched by one of ``patterns`` (from
    :func:`split_glob`), in sorted order, each once; with ``directories``,
    every file under a matched directory too. Symlinks are never followed;
    with ``links`` a matched one is yielded (``is_link``) so that the caller
    can say it was refused. Use each :class:`Match` before taking the next:
    its directory is open only meanwhile."""
    for dirpath, dirnames, filenames, dir_fd in os.fwalk(root, follow_symlinks=False):
        rel_dir = PurePosixPath(os.path.relpath(dirpath, root)).parts
        rel_dir = () if rel_dir == (".",) else rel_dir
        covered = directories and any(_prefix_matches(rel_dir, p) for p in patterns)
        dirnames_all = list(dirnames)
        # Descend only where a match may still be; fwalk never enters symlinks.
        dirnames[:] = sorted(
            d for d in dirnames if covered or any(_may_hold((*rel_dir, d), p) for p in patterns)
        )
        # fwalk lists a symlink to a directory among the directories.
        names = sorted({*filenames, *dirnames_all})
        for name in names:
            parts = (*rel_dir, name)
            if not covered and not any(_match(parts, p) for p in patterns):
                continue
            try:
                mode = os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode
            except OSError:
                continue
            if stat.S_ISREG(mode):
                yield Match("/".join(parts), dir_fd, name)
            elif stat.S_ISLNK(mode) and links:
                yield Match("/".join(parts), dir_fd, name, is_link=True)
