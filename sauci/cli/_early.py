"""``sauci run``'s first move: start git before the engine is imported.

Importing the engine (attrs, the models, the store) takes most of the
command's own time, and git needs none of it: when the repository, its HEAD
and the data directory can be read from files, ``git worktree add`` and
``git show`` start at once and work on the other core meanwhile. When
anything is unusual (a linked worktree, GIT_DIR, a ``sauci.toml``, a
reftable repository) this gives up and ``sauci run`` takes its usual path;
:func:`sauci.cli._local.cmd_run` also checks every guess against what the
engine then says before using the checkout.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import time
from pathlib import Path

from sauci._gitfiles import GitCommand, head, locate, worktree_lock
from sauci.core.paths import default_data_dir
from sauci.sandbox._cgprobe import prefetch

__all__ = ["EarlyCheckout", "start"]

SHOW_FORMAT = "--format=%H%x00%an <%ae>%x00%B"


class EarlyCheckout:
    """A workspace being made for HEAD, and its commit being read, by git."""

    def __init__(self, repo: Path, git_dir: Path, sha: str, ref: str, workspace: Path) -> None:
        self.repo = repo
        self.git_dir = git_dir
        self.sha = sha
        self.ref = ref
        self.workspace = workspace
        self._lock = contextlib.ExitStack()
        self._lock.enter_context(worktree_lock(repo))
        self._commands: list[GitCommand] = []
        try:
            for args in (
                ["worktree", "add", "--quiet", "--detach", str(workspace), sha],
                ["show", "-s", SHOW_FORMAT, sha, "--"],
            ):
                self._commands.append(GitCommand(args, cwd=repo))
        except BaseException:  # Ctrl-C, or git missing: what started is undone
            self.discard()
            raise

    def wait(self) -> tuple[str, str] | None:
        """(author, message) once the workspace is made; None if git failed
        (the caller then goes its usual way, and reports git's own error)."""
        from sauci.exceptions import SourceError

        outputs: list[str | None] = []
        try:
            for command in self._commands:
                try:
                    outputs.append(command.result())
                except SourceError:
                    outputs.append(None)
        finally:
            self._lock.close()
        if len(outputs) < 2 or outputs[0] is None or outputs[1] is None:
            return None  # git failed, or was not all started (Ctrl-C)
        show = outputs[1]
        sha, author, message = [*show.split("\x00", 2), "", ""][:3]
        if sha.strip() != self.sha:
            return None
        return author, message.strip()

    def discard(self) -> None:
        """Let git finish, then remove the workspace: nothing of this is left."""
        self.wait()
        from sauci.git import GitSource

        # Also when git made only its entry under worktrees/ (ended at once).
        GitSource(self.repo, git_dir=self.git_dir).remove(self.workspace)


def start(args: argparse.Namespace) -> EarlyCheckout | None:
    """Start the checkout of HEAD for ``sauci run`` when that is certain; else None.

    Also starts the local sandbox's cgroup probe (sauci.sandbox._cgprobe):
    on cgroup v1 its first thread move waits for an RCU grace period, which
    then overlaps the imports. Only after git has started: while a move
    waits, the kernel holds up every fork of this process too.
    """
    try:
        return _start(args)
    finally:
        prefetch()


def _start(args: argparse.Namespace) -> EarlyCheckout | None:
    if args.dirty or args.keep_workspace:
        return None
    located = locate(args.path)
    if located is None:
        return None
    repo, git_dir = located
    answer = head(git_dir)
    data_dir = _data_dir(args, repo)
    if answer is None or data_dir is None:
        return None
    sha, ref = answer
    name = f"run-{int(time.time() * 1000)}-{os.getpid() & 0xFFFF:x}"
    workspace = data_dir / "workspaces" / name
    try:
        workspace.parent.mkdir(parents=True, exist_ok=True)
        return EarlyCheckout(repo, git_dir, sha, ref, workspace)
    except Exception:  # no git, no room: the usual way meets it and says so
        return None


def _data_dir(args: argparse.Namespace, repo: Path) -> Path | None:
    """The data directory as settings will say, when no settings file can change it."""
    if args.data_dir:
        return Path(args.data_dir).expanduser()
    if os.environ.get("SAUCI_CONFIG") or (repo / "sauci.toml").exists():
        return None
    return default_data_dir()
