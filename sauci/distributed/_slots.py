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

Builds side by side each get a spare slot while theirs is tidied, made by
the build that finds none free: a ``git worktree add`` before its first
step (90 ms at load 3). While two or more builds of a repository run here,
the worker makes that spare in the background instead (clean at their
commit), so the build that starts as another's slot is tidied finds it.

A commit with submodules still gets a worktree of its own (its submodules
are checked out by the mirror; a slot's reset would not update them).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sauci._logging import get_logger
from sauci.exceptions import SourceError
from sauci.source.mirrors import MirrorSource
from sauci.source.workspaces import Lease, reserve
from sauci.typing import Source

__all__ = ["SlotMirrorSource", "slot_sources"]

log = get_logger(__name__)


class SlotMirrorSource:
    """A :class:`MirrorSource` whose workspaces are kept slots (see the module)."""

    def __init__(self, mirror: MirrorSource, keep: int = 256) -> None:
        self._mirror = mirror
        self._keep = keep
        self._lock = threading.Lock()  # the slots of a worker are threads
        self._resolving = threading.Lock()  # held while the mirror is asked for a commit
        self._present: OrderedDict[str, None] = OrderedDict()  # full shas the mirror has
        self._running = 0  # builds whose slot was reset and not yet released
        self._sparing = False  # a spare slot is being made

    def __getattr__(self, name: str) -> Any:
        return getattr(self._mirror, name)

    def resolve(self, rev: str = "HEAD") -> str:
        """As MirrorSource's; a full sha the mirror was once seen to have is
        taken as it is, with no git process (the server sends builds by sha,
        and a mirror only gains commits: it is fetched into, never pruned of
        objects by SauCI)."""
        if self._seen(rev):
            return rev
        # One look in the mirror at a time: the slots of a worker take their
        # first builds of a new repository at once, and the second, which
        # would wait for the first's clone and then ask git for the commit
        # again (two processes), takes the first's answer.
        with self._resolving:
            if self._seen(rev):
                return rev
            sha = self._mirror.resolve(rev)
            if sha == rev:  # a full sha, found in the mirror
                with self._lock:
                    self._present[sha] = None
                    if len(self._present) > self._keep:
                        self._present.popitem(last=False)
        return sha

    def _seen(self, rev: str) -> bool:
        with self._lock:
            if rev in self._present:
                self._present.move_to_end(rev)
                return True
        return False

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

    def _started(self, root: Path, sha: str) -> None:
        with self._lock:
            self._running += 1
            spare = self._running >= 2 and not self._sparing
            self._sparing = self._sparing or spare
        if spare:
            threading.Thread(
                target=self._make_spare, args=(root, sha), name="sauci-spare-slot", daemon=True
            ).start()

    def _ended(self) -> None:
        with self._lock:
            self._running -= 1

    def _make_spare(self, root: Path, sha: str) -> None:
        """Make a slot at ``sha`` when every slot is held or being tidied (a free
        one is let go at once, its note kept)."""
        try:
            lease = reserve(self, root)
            try:
                if not lease.path.exists():
                    lease.reset(sha)
                    lease.release(tidy=True)  # noted clean at sha, in the background
            finally:
                lease.release()  # a second release changes nothing
        except (SourceError, OSError) as exc:
            log.info("spare_slot_failed", repo=str(self.repo), error=str(exc))
        finally:
            with self._lock:
                self._sparing = False


class _SlotWorkspace:
    """A slot, or for a commit with submodules a worktree of its own."""

    def __init__(self, source: SlotMirrorSource, root: Path, lease: Lease) -> None:
        self._source = source
        self._root = root
        self._lease = lease
        self._own: Any = None  # the MirrorWorkspace of a commit with submodules
        self._counted = False  # in the source's count of builds running side by side

    @property
    def path(self) -> Path:
        return self._own.path if self._own is not None else self._lease.path

    def reset(self, sha: str) -> Path:
        if self._own is not None:
            return Path(self._own.reset(sha))
        path = self._lease.reset(sha)
        if not (path / ".gitmodules").exists():
            if not self._counted:
                self._counted = True
                self._source._started(self._root, sha)
            return path
        # Submodules: hand the slot back (the next build resets it) and let
        # the mirror make this build a worktree with them.
        self._lease.release()
        self._own = self._source._mirror.reserve(self._root)
        return Path(self._own.reset(sha))

    def release(self, *, tidy: bool = False) -> None:
        if self._counted:
            self._counted = False
            self._source._ended()
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
