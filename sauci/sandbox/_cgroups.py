"""The cgroup file system as this process sees it: its own cgroups, where step
cgroups can be made (:func:`probe`), and the no-op move that keeps cgroup v1
thread moves fast (:func:`warm_moves`).

On cgroup v1 the first move of a thread between cgroups after a quiet spell
waits for an RCU grace period (5-30 ms on the machines measured), and while
it waits the kernel holds up every fork and thread start; moves in the next
few milliseconds do not wait. So :func:`probe` moves nothing: it looks at
mounts and permissions, and the first step's own move is the test (see
``LocalSandbox``). ``LocalSandbox.prepare`` (called by the runner before a
checkout) makes a move that changes nothing, so that the wait overlaps the
checkout.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
from collections.abc import Mapping
from pathlib import Path

__all__ = [
    "CONTROLLERS",
    "DEFAULT_ROOT",
    "Found",
    "own_cgroups",
    "probe",
    "read_file",
    "warm_moves",
    "warming",
    "write_file",
    "write_own_tid",
]

DEFAULT_ROOT = Path("/sys/fs/cgroup")
CONTROLLERS = ("pids", "memory", "cpu")

# (version, controller or "unified" -> base directory, controllers that limit)
Found = tuple[int, dict[str, Path], frozenset[str]]


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


def _try_child(base: Path) -> None:
    """Raise OSError unless a child cgroup can be made here (mkdir and rmdir: cheap)."""
    # Not "sauci-...": sweep() must never take a probe for a leftover.
    child = base / f"sauciprobe-{os.getpid()}-{os.urandom(3).hex()}"
    os.mkdir(child)
    os.rmdir(child)


def probe(root: Path | str = DEFAULT_ROOT) -> tuple[Found | None, str]:
    """Where step cgroups can be made under ``root``, or None and the reason in
    words. Tries the v2 unified hierarchy when ``<root>/cgroup.controllers``
    exists, else the v1 controllers pids, memory and cpu.

    No thread is moved (on v1 that waits for the kernel): whether a step's
    thread may enter its cgroup is learnt when the first step starts."""
    root = Path(root)
    try:
        own = own_cgroups()
    except OSError as exc:
        return None, f"cannot read /proc/self/cgroup: {exc}"
    if (root / "cgroup.controllers").exists():
        return _probe_v2(root, own)
    return _probe_v1(root, own)


def _probe_v1(root: Path, own: Mapping[str, str]) -> tuple[Found | None, str]:
    bases: dict[str, Path] = {}
    problems: list[str] = []
    for ctrl in CONTROLLERS:
        mount = root / ctrl
        if ctrl not in own or not (mount / "cgroup.procs").exists():
            problems.append(f"{ctrl}: not mounted at {mount}")
            continue
        base = mount / own[ctrl].lstrip("/")
        try:
            _try_child(base)
        except OSError as exc:
            problems.append(f"{ctrl}: {exc.strerror or exc} in {base}")
            continue
        bases[ctrl] = base
    if not bases:
        return None, "no usable cgroup v1 controller (" + "; ".join(problems) + ")"
    return (1, bases, frozenset(bases)), ""


def _probe_v2(root: Path, own: Mapping[str, str]) -> tuple[Found | None, str]:
    if "" not in own:
        return None, "this process is in no cgroup v2 group"
    base = root / own[""].lstrip("/")
    try:
        _try_child(base)
    except OSError as exc:
        return None, f"cannot create a cgroup in {base}: {exc.strerror or exc}"
    try:
        available = set(read_file(base / "cgroup.controllers").split())
        enabled = set(read_file(base / "cgroup.subtree_control").split())
    except OSError as exc:
        return None, f"cannot read {base}: {exc}"
    for ctrl in CONTROLLERS:
        if ctrl in available and ctrl not in enabled:
            # Fails with EBUSY when this process sits in base ("no internal
            # processes"): then steps are tracked and killed, not limited.
            try:
                write_file(base / "cgroup.subtree_control", f"+{ctrl}")
                enabled.add(ctrl)
            except OSError:
                pass
    controllers = frozenset(c for c in CONTROLLERS if c in enabled)
    return (2, {"unified": base}, controllers), ""


# Held while a warm-up move is asked for or under way: one at a time is enough.
warming = threading.Lock()
# The moves are made by one thread kept for them (it moves into the cgroup it
# is in: nothing changes): asking it is a queue put, where starting a thread
# per move waited for the new thread to run (Thread.start), 0.1 ms median
# and 3-4.5 ms at the 90th percentile on a server whose builds' threads held
# the interpreter lock, twice per passage from one build to the next
# (docs/performance.md, issue 22 item 1, session 17).
_asked: queue.SimpleQueue[Path] = queue.SimpleQueue()
_mover: list[threading.Thread] = []  # the kept thread, once started


def warm_moves(tasks: Path | None) -> None:
    """Move the kept warm-up thread into the cgroup whose ``tasks`` file this
    is (its own: nothing changes), unless a move is on its way already;
    errors only mean a missed speed-up."""
    if tasks is None or not warming.acquire(blocking=False):
        return
    try:
        if not _mover or not _mover[0].is_alive():
            thread = threading.Thread(target=_move, name="sauci-cgroup-warm", daemon=True)
            thread.start()
            _mover[:] = [thread]
    except BaseException:
        warming.release()
        raise
    _asked.put(tasks)


def _move() -> None:
    while True:
        tasks = _asked.get()
        try:
            with contextlib.suppress(OSError):
                write_own_tid(tasks)
        finally:
            warming.release()
