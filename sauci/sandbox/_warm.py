"""Keep cgroup v1 thread moves fast: a no-op move made ahead of time.

On cgroup v1 the first move of a thread between cgroups after a quiet
spell waits for an RCU grace period (8-15 ms on the machines measured), and
moves in the next 30-50 ms do not. A step's start is such a move, so
SauCI makes one that changes nothing (a short-lived thread into its own
cgroup) just before it needs the fast window: the wait then overlaps other
work. Light on purpose (no attrs): ``sauci run`` calls it before importing
its engine.
"""

from __future__ import annotations

import _thread
import contextlib
import os
import threading
from pathlib import Path

__all__ = ["own_tasks_file", "warm_moves", "write_own_tid"]


def write_own_tid(tasks: Path) -> None:
    """Move the calling thread into the v1 cgroup of this ``tasks`` file."""
    fd = os.open(tasks, os.O_WRONLY)
    try:
        os.write(fd, str(threading.get_native_id()).encode())
    finally:
        os.close(fd)


def own_tasks_file(root: Path | str = "/sys/fs/cgroup", controller: str = "pids") -> Path | None:
    """The v1 ``tasks`` file of this process's cgroup of ``controller``; None on
    cgroup v2 or when it is not mounted there."""
    try:
        with open("/proc/self/cgroup", encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return None
    for line in lines:
        _, names, path = [*line.split(":", 2), "", ""][:3]
        if controller in names.split(","):
            tasks = Path(root) / controller / path.lstrip("/") / "tasks"
            return tasks if tasks.exists() else None
    return None


def warm_moves(tasks: Path | None) -> None:
    """Move a short-lived thread into the cgroup whose ``tasks`` file this is
    (its own: nothing changes); errors only mean a missed speed-up."""
    if tasks is None:
        return

    def move() -> None:
        with contextlib.suppress(OSError):
            write_own_tid(tasks)

    # Not threading.Thread: its start() waits until the thread runs.
    _thread.start_new_thread(move, ())
