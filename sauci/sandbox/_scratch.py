"""Per-build scratch space of the namespace sandbox: a writable HOME and a private /tmp.

The steps of one build share them, as they share its workspace (an install
step leaves ``~/.cache/pip`` for the test step); no other build sees them.
They live beside the workspace, as ``<workspace>-scratch/{home,tmp}``, in
the directory the sandbox covers, so a step reaches them only where they are
bound (its $HOME and /tmp). Made before a workspace's first step, removed
when its build ends (:meth:`ScratchDirs.release`) or the sandbox closes.
"""

from __future__ import annotations

import os
import shutil
import stat
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs

from sauci._logging import get_logger

__all__ = ["HOME", "Scratch", "ScratchDirs", "scratch_path"]

log = get_logger(__name__)

# Where the scratch HOME is inside the sandbox (/home is covered, so nothing
# of the host's people is there).
HOME = "/home/sauci"


@attrs.frozen(kw_only=True)
class Scratch:
    """One workspace's scratch directories on the host."""

    root: Path
    home: Path
    tmp: Path


def scratch_path(workspace: Path) -> Path:
    """The scratch directory of ``workspace``: its sibling ``<name>-scratch``."""
    workspace = Path(os.path.abspath(workspace))
    return workspace.with_name(f"{workspace.name}-scratch")


class ScratchDirs:
    """The scratch directories of the workspaces whose builds are running.

    ``owner``: (uid, gid) the directories are given to (the step's host uid
    when SauCI is root); None keeps this process's.
    """

    def __init__(self, owner: tuple[int, int] | None = None) -> None:
        self.owner = owner
        self._made: dict[Path, Scratch] = {}
        self._lock = threading.Lock()

    def get(self, workspace: Path) -> Scratch:
        """``workspace``'s scratch, made fresh on its first step since the last release."""
        root = scratch_path(workspace)
        with self._lock:
            found = self._made.get(root)
            if found is not None and found.root.is_dir():
                return found
            # Left by a build that never released it (a crash): start clean.
            _remove(root)
            scratch = Scratch(root=root, home=root / "home", tmp=root / "tmp")
            root.mkdir(mode=0o700)
            scratch.home.mkdir(mode=0o700)
            scratch.tmp.mkdir()
            scratch.tmp.chmod(0o1777)  # as a /tmp is; only the step's uid gets here
            if self.owner is not None:
                for path in (root, scratch.home, scratch.tmp):
                    os.chown(path, *self.owner, follow_symlinks=False)
            self._made[root] = scratch
            return scratch

    def release(self, workspace: Path) -> None:
        """The build in ``workspace`` ended: remove its scratch directories."""
        root = scratch_path(workspace)
        with self._lock:
            self._made.pop(root, None)
            _remove(root)

    def release_all(self) -> None:
        with self._lock:
            roots, self._made = list(self._made), {}
            for root in roots:
                _remove(root)


def _remove(root: Path) -> None:
    """Remove ``root`` and everything a step left there, without following symlinks."""
    if not os.path.lexists(root):
        return
    if os.path.islink(root) or not os.path.isdir(root):
        os.unlink(root)
        return

    def writable_parent(func: Callable[..., Any], path: str, exc: Any) -> None:
        # A step may leave a directory without write or search permission
        # (not a problem for root, which SauCI usually is).
        parent = os.path.dirname(path)
        try:
            os.chmod(parent, stat.S_IRWXU)
            if os.path.isdir(path) and not os.path.islink(path):
                os.chmod(path, stat.S_IRWXU)
            func(path)
        except OSError as error:
            log.warning("scratch_not_removed", path=path, error=str(error))

    shutil.rmtree(root, onerror=writable_parent)
