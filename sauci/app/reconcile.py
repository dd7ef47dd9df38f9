"""What a ``sauci run`` that was killed left behind, ended by the next one.

``sauci run`` ends its build as cancelled on Ctrl-C, SIGTERM and SIGHUP; a
``kill -9`` (or a crash, or a power cut) leaves the build and its steps
"running" in the store and the steps' processes alive. The next ``sauci
run`` on the same data dir calls :func:`end_lost_runs`: for every running
build whose ``local-<pid>`` runner is gone, the processes of its steps are
ended (the step cgroups of that run, named by its pid) and the build and its
unfinished steps end ``errored: runner lost``. Builds of a server
(``serve:HOST:PID``) are left to that server, which requeues them at its
restart (:meth:`sauci.core.server.Server.recover`).

Its workspace (``<data>/workspaces/run-<pid>-...``, named by its pid) is
removed by :func:`remove_lost_workspaces`, also when the run was killed
before its build was recorded; a workspace that is a worktree of the user's
repository leaves that repository through ``git worktree remove``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from sauci._logging import get_logger
from sauci.core.lost import alive, end_lost_build, local_owner
from sauci.core.models import Build, Status
from sauci.typing import Store

__all__ = [
    "end_lost_runs",
    "remove_lost_workspaces",
    "remove_slot_leftovers",
    "run_cgroup_prefix",
    "run_workspace_name",
]

_RUN_WORKSPACE = r"^run-(\d+)-"  # patterns compiled by re at their first use
# What a server's builds make beside its workspace slots and remove when they
# end: matrix entries' copies, the namespace sandbox's per-build HOME and
# /tmp, a cache restore's private directory. `sauci run`'s (run-...) are not
# the server's.
_SLOT_LEFTOVER = r"^(?!run-)(?:.+\.entry-b\d+-.+|.+-scratch|\..+\.cache-.+)$"

log = get_logger(__name__)


def run_cgroup_prefix(pid: int) -> str:
    """The step cgroups of the ``sauci run`` (or library runner) with this pid."""
    return f"sauci-run{pid}-"


def _sweep(prefix: str) -> list[str]:
    from sauci.sandbox import sweep

    return sweep(prefix)


def end_lost_runs(store: Store, *, sweep: Callable[[str], list[str]] = _sweep) -> list[Build]:
    """End every running build of a ``local-<pid>`` runner that is gone, and
    its steps' processes; returns the builds ended."""
    ended = []
    for build in store.list_builds(status=Status.RUNNING, limit=1000):
        pid = local_owner(build.claimed_by)
        if pid is None or alive(pid):
            continue
        swept = sweep(run_cgroup_prefix(pid))
        reason = f"runner lost: the process running it (pid {pid}) ended mid-build"
        ended.append(end_lost_build(store, build, reason))
        log.warning("lost_run_ended", build=build.id, pid=pid, cgroups=len(swept))
    return ended


def run_workspace_name() -> str:
    """A new workspace name for this ``sauci run``, named by its pid."""
    return f"run-{os.getpid()}-{int(time.time() * 1000)}-{os.urandom(2).hex()}"


def remove_lost_workspaces(root: Path) -> list[Path]:
    """Remove every ``run-<pid>-...`` workspace under ``root`` whose process is
    gone; returns the paths removed."""

    def lost(entry: os.DirEntry[str]) -> bool:
        pid = _run_pid(entry.name)
        return pid is not None and not alive(pid)

    removed = _remove_directories(root, lost, _remove_workspace)
    for path in removed:
        log.warning("lost_workspace_removed", path=str(path), pid=_run_pid(path.name))
    return removed


def _run_pid(name: str) -> int | None:
    """The process id in a ``run-<pid>-...`` workspace's name."""
    match = re.match(_RUN_WORKSPACE, name)
    return int(match.group(1)) if match else None


def _remove_directories(
    root: Path, chosen: Callable[[os.DirEntry[str]], bool], remove: Callable[[Path], None]
) -> list[Path]:
    """Remove, with ``remove``, each directory right under ``root`` (links
    not followed) that ``chosen`` picks; the ones gone afterwards."""
    try:
        entries = list(os.scandir(root))
    except OSError:
        return []
    removed = []
    for entry in entries:
        if not entry.is_dir(follow_symlinks=False) or not chosen(entry):
            continue
        path = Path(entry.path)
        remove(path)
        if not os.path.lexists(path):
            removed.append(path)
    return removed


def _remove_workspace(path: Path) -> None:
    """A worktree leaves its repository's list through git; any other directory
    is deleted."""
    try:
        pointer = (path / ".git").read_text() if (path / ".git").is_file() else ""
    except OSError:
        pointer = ""
    if pointer.startswith("gitdir: "):
        gitdir = Path(pointer[len("gitdir: ") :].strip())
        common = gitdir.parent.parent  # <repo>/.git/worktrees/<name> -> <repo>/.git
        subprocess.run(
            ["git", "--git-dir", str(common), "worktree", "remove", "--force", str(path)],
            capture_output=True,
            check=False,
            timeout=120,
        )
    shutil.rmtree(path, ignore_errors=True)


def remove_slot_leftovers(root: Path) -> list[Path]:
    """Remove what a server's builds left beside their workspace slots under
    ``root`` when the server died mid-build; for the server at start, which
    holds the data dir's lock (no build of it runs yet)."""
    removed = _remove_directories(
        root,
        lambda entry: re.match(_SLOT_LEFTOVER, entry.name) is not None,
        lambda path: shutil.rmtree(path, ignore_errors=True),
    )
    if removed:
        log.warning("slot_leftovers_removed", count=len(removed), root=str(root))
    return removed
