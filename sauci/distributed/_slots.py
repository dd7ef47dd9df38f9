"""A worker's workspaces: one kept per slot, reset to each build's commit.

A worker reads every repository through a mirror of its own
(:class:`~sauci.source.mirrors.MirrorSource`), which makes a new worktree
per build and deletes it after: a ``git worktree add`` (with its
``update-ref`` and ``reset --hard``) before the first step, a delete and a
``git worktree prune`` after, and the mirror's lock held meanwhile, so a
build waits on the previous one's prune. :class:`SlotMirrorSource` lends the
mirror's worktrees as the slots of :mod:`sauci.source.workspaces` instead,
as a server does for a local repository: a slot is tidied back to its
commit in the background when a build ends, so the next build of that
commit starts with no git process at all, and one of another commit with
one ``git checkout``.

A commit with submodules still gets a worktree of its own (its submodules
are checked out by the mirror; a slot's reset would not update them).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sauci.source.mirrors import MirrorSource
from sauci.source.workspaces import Lease, reserve
from sauci.typing import Source

__all__ = ["SlotMirrorSource", "slot_sources"]


class SlotMirrorSource:
    """A :class:`MirrorSource` whose workspaces are kept slots (see the module)."""

    def __init__(self, mirror: MirrorSource, keep: int = 256) -> None:
        self._mirror = mirror
        self._keep = keep
        self._lock = threading.Lock()  # the slots of a worker are threads
        self._present: OrderedDict[str, None] = OrderedDict()  # full shas the mirror has

    def __getattr__(self, name: str) -> Any:
        return getattr(self._mirror, name)

    def resolve(self, rev: str = "HEAD") -> str:
        """As MirrorSource's; a full sha the mirror was once seen to have is
        taken as it is, with no git process (the server sends builds by sha,
        and a mirror only gains commits: it is fetched into, never pruned of
        objects by SauCI)."""
        with self._lock:
            if rev in self._present:
                self._present.move_to_end(rev)
                return rev
        sha = self._mirror.resolve(rev)
        if sha == rev:  # a full sha, found in the mirror
            with self._lock:
                self._present[sha] = None
                if len(self._present) > self._keep:
                    self._present.popitem(last=False)
        return sha

    # -- what a slot needs of its repository (sauci.source.workspaces.SlotRepository)

    @property
    def repo(self) -> Path:
        return self._mirror.mirror_path

    @property
    def common_dir(self) -> Path:
        return self._mirror.mirror_path

    def checkout(self, sha: str, dest: Path) -> Path:
        with self._lock:
            known = sha in self._present  # no `cat-file` before a new slot's worktree
        return self._mirror.checkout(sha, dest, known=known)

    def remove(self, dest: Path) -> None:
        self._mirror.remove(dest)

    # -- the Source's workspaces -------------------------------------------------

    def reserve(self, root: Path) -> _SlotWorkspace:
        """Hold a free slot under ``root``; ``reset(sha)`` makes it the commit's tree."""
        return _SlotWorkspace(self, root, reserve(self, root))


class _SlotWorkspace:
    """A slot, or for a commit with submodules a worktree of its own."""

    def __init__(self, source: SlotMirrorSource, root: Path, lease: Lease) -> None:
        self._source = source
        self._root = root
        self._lease = lease
        self._own: Any = None  # the MirrorWorkspace of a commit with submodules

    @property
    def path(self) -> Path:
        return self._own.path if self._own is not None else self._lease.path

    def reset(self, sha: str) -> Path:
        if self._own is not None:
            return Path(self._own.reset(sha))
        path = self._lease.reset(sha)
        if not (path / ".gitmodules").exists():
            return path
        # Submodules: hand the slot back (the next build resets it) and let
        # the mirror make this build a worktree with them.
        self._lease.release()
        self._own = self._source._mirror.reserve(self._root)
        return Path(self._own.reset(sha))

    def release(self, *, tidy: bool = False) -> None:
        if self._own is not None:
            self._own.release(tidy=tidy)
        self._lease.release(tidy=tidy)  # a second release changes nothing


def slot_sources(sources: Callable[[str], Source]) -> Callable[[str], Source]:
    """``sources`` (a worker's mirrors) with each MirrorSource lending kept slots."""

    def source(repo: str) -> Source:
        made = sources(repo)
        if isinstance(made, MirrorSource):
            return SlotMirrorSource(made)  # type: ignore[return-value]
        return made

    return source
