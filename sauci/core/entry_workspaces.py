"""One workspace per matrix entry: a copy of the build's workspace, made when the entry starts.

Matrix entries of a step run side by side; in one shared directory each
entry's ``junit``/``artifacts`` globs would also find its siblings' files, and
their builds would overwrite each other's. So each entry runs in a copy of the
build's workspace taken when it starts (after the steps it needs, so an
install step's ``.venv`` is there), and its reports and artifacts are
collected from that copy, which is then deleted. Steps that need a matrix
step see the build's own workspace: what entries write stays in their
copies, as with separate jobs in GitHub Actions (declare ``artifacts`` to
keep it).

The copies live beside the workspace (same file system, so ``cp --reflink``
can share blocks where the file system allows it); a copy whose step ended
without collection (errored) is deleted when the build ends.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

from sauci._logging import get_logger
from sauci.core.paths import safe_name
from sauci.exceptions import SandboxError

__all__ = ["EntryWorkspaces", "copy_tree"]

log = get_logger(__name__)


def copy_tree(source: Path, dest: Path) -> None:
    """Copy ``source``'s contents into the existing directory ``dest``.

    Symlinks are copied as links (never followed), modes and owners kept;
    hard links inside ``source`` stay hard links within the copy, never to
    ``source``. GNU ``cp -a --reflink=auto`` where there is one (shares
    blocks on btrfs/XFS, a plain copy elsewhere), ``shutil`` otherwise.
    """
    if sys.platform.startswith("linux") and shutil.which("cp"):
        done = subprocess.run(
            ["cp", "-a", "--reflink=auto", "--", f"{source}/.", f"{dest}/"],
            capture_output=True,
            check=False,
        )
        if done.returncode != 0:
            why = done.stderr.decode(errors="replace").strip().splitlines()
            raise OSError(why[-1] if why else f"cp exited with {done.returncode}")
        return
    shutil.copytree(source, dest, symlinks=True, dirs_exist_ok=True)


def _remove(path: Path) -> None:
    """Delete a tree a step wrote, read-only directories included."""

    def retry(func: object, name: str, _exc: object) -> None:
        parent = os.path.dirname(name)
        try:
            os.chmod(parent, stat.S_IRWXU)
            if os.path.isdir(name) and not os.path.islink(name):
                os.chmod(name, stat.S_IRWXU)
                shutil.rmtree(name, ignore_errors=True)
            else:
                os.unlink(name)
        except OSError:
            pass

    shutil.rmtree(path, onerror=retry)  # onexc is 3.12+


class EntryWorkspaces:
    """The entry workspaces of one build; :meth:`close` deletes them all."""

    def __init__(
        self,
        workspace: Path,
        build_id: int,
        *,
        ended: Callable[[Path], None] | None = None,
    ) -> None:
        self.workspace = workspace
        self.build_id = build_id
        # Called with each copy before it is deleted: the sandboxes drop what
        # they keep per workspace (the namespace sandbox's HOME and /tmp).
        self._ended = ended
        self._made: list[Path] = []
        self._lock = threading.Lock()

    def make(self, step: str) -> Path:
        """A fresh copy of the build's workspace for the matrix entry ``step``.

        Raises :class:`~sauci.exceptions.SandboxError` (the step errors) when
        the copy cannot be made, a full disk for example.
        """
        root = self.workspace.parent
        name = f"{self.workspace.name}.entry-b{self.build_id}-{safe_name(step)[:60]}-"
        try:
            dest = Path(tempfile.mkdtemp(prefix=name, dir=root))
        except OSError as exc:
            raise SandboxError(f"cannot make a workspace for {step!r}: {exc}") from exc
        with self._lock:
            self._made.append(dest)
        try:
            # The copy gets the workspace's own mode (0700 or what a sandbox set).
            os.chmod(dest, stat.S_IMODE(os.stat(self.workspace).st_mode))
            copy_tree(self.workspace, dest)
        except OSError as exc:
            raise SandboxError(f"cannot copy the workspace for {step!r} to {dest}: {exc}") from exc
        log.debug("entry_workspace_made", build=self.build_id, step=step, path=str(dest))
        return dest

    def release(self, path: Path) -> None:
        """Delete one entry's copy once its reports are collected."""
        with self._lock:
            if path not in self._made:
                return
            self._made.remove(path)
        self._delete(path)

    def close(self) -> None:
        """Delete every copy made for this build (their reports are collected)."""
        with self._lock:
            made, self._made = self._made, []
        for path in made:
            self._delete(path)

    def _delete(self, path: Path) -> None:
        if self._ended is not None:
            self._ended(path)
        try:
            _remove(path)
        except OSError as exc:
            log.warning("entry_workspace_not_removed", path=str(path), error=str(exc))
