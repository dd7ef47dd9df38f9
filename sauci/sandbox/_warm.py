"""Keep cgroup v1 thread moves fast: a no-op move made ahead of time.

On cgroup v1 the first move of a thread between cgroups after a quiet
spell waits for an RCU grace period (8-15 ms on the machines measured), and
moves in the next 30-50 ms do not. A step's start is such a move, so
SauCI makes one that changes nothing (a short-lived thread into its own
cgroup) just before it needs the fast window: the wait then overlaps other
work. Light on purpose (no attrs): ``sauci run`` calls it before importing
its engine. Also the one-read/one-write helpers for cgroup files that the
probe (``_cgprobe``) and the step cgroups (``_proctree``) share.
"""

from __future__ import annotations

import _thread
import contextlib
import os
import threading
from pathlib import Path

__all__ = [
    "own_cgroups",
    "own_tasks_file",
    "read_file",
    "warm_moves",
    "write_file",
    "write_own_tid",
]


def write_file(path: Path | str, value: str) -> None:
    """Write ``value`` with one write(2), as cgroup files want."""
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def read_file(path: Path | str) -> str:
    """A small (kernel) file's text, in one read(2)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.read(fd, 1 << 20).decode(errors="replace")
    finally:
        os.close(fd)


def write_own_tid(tasks: Path) -> None:
    """Move the calling thread into the v1 cgroup of this ``tasks`` file."""
    write_file(tasks, str(threading.get_native_id()))


def own_cgroups() -> dict[str, str]:
    """Controller (or "" for v2) -> this process's cgroup path, from /proc/self/cgroup."""
    with open("/proc/self/cgroup", encoding="utf-8", errors="replace") as fh:
        lines = fh.read().splitlines()
    out: dict[str, str] = {}
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, names, path = parts
        if not names:
            out[""] = path
        for name in names.split(","):
            if name:
                out[name] = path
    return out


def own_tasks_file(root: Path | str = "/sys/fs/cgroup", controller: str = "pids") -> Path | None:
    """The v1 ``tasks`` file of this process's cgroup of ``controller``; None on
    cgroup v2 or when it is not mounted there."""
    try:
        path = own_cgroups().get(controller)
    except OSError:
        return None
    if path is None:
        return None
    tasks = Path(root) / controller / path.lstrip("/") / "tasks"
    return tasks if tasks.exists() else None


_moving = False  # a warm-up thread is in flight: one at a time is enough
_moving_lock = threading.Lock()


def warm_moves(tasks: Path | None) -> None:
    """Move a short-lived thread into the cgroup whose ``tasks`` file this is
    (its own: nothing changes), unless one is on its way already; errors only
    mean a missed speed-up."""
    global _moving
    if tasks is None:
        return
    with _moving_lock:
        if _moving:
            return
        _moving = True

    def move() -> None:
        global _moving
        try:
            with contextlib.suppress(OSError):
                write_own_tid(tasks)
        finally:
            with _moving_lock:
                _moving = False

    # Not threading.Thread: its start() waits until the thread runs.
    _thread.start_new_thread(move, ())
