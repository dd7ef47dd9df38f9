"""Find where this process may create step cgroups, possibly ahead of time.

Light on purpose (no attrs), like :mod:`sauci.sandbox._warm`: ``sauci run``
starts the probe on a thread before it imports its engine. On cgroup v1 the
probe moves a thread between cgroups, and the first such move waits for an
RCU grace period (about 8 ms here), so started early, that wait overlaps the
imports. :func:`sauci.sandbox._proctree.detect_cgroups` turns the answer into
a ``CgroupLayout``.
"""

from __future__ import annotations

import _thread
import os
import threading
from collections.abc import Mapping
from pathlib import Path

from sauci.sandbox._warm import own_cgroups, read_file, write_file, write_own_tid

__all__ = [
    "CONTROLLERS",
    "DEFAULT_ROOT",
    "Found",
    "prefetch",
    "probe",
    "take",
    "token_hex",
]

DEFAULT_ROOT = Path("/sys/fs/cgroup")
CONTROLLERS = ("pids", "memory", "cpu")

# (version, controller or "unified" -> base directory, controllers that limit)
Found = tuple[int, dict[str, Path], frozenset[str]]


def token_hex(nbytes: int) -> str:
    """What secrets.token_hex does (os.urandom), without importing secrets: it
    pulls in hmac and hashlib, which loads OpenSSL (about 5 ms of `sauci run`)."""
    return os.urandom(nbytes).hex()


def _try_child(base: Path, *, move_thread: bool) -> None:
    """Raise OSError unless a child cgroup can be made (and, for v1, entered) here."""
    # Not "sauci-...": sweep() must never take a probe for a leftover.
    child = base / f"sauciprobe-{os.getpid()}-{token_hex(3)}"
    os.mkdir(child)
    try:
        if move_thread:
            write_own_tid(child / "tasks")
            write_own_tid(base / "tasks")
    finally:
        os.rmdir(child)


def probe(root: Path | str = DEFAULT_ROOT) -> tuple[Found | None, str]:
    """Where step cgroups can be made under ``root``, or None and the reason in
    words. Tries the v2 unified hierarchy when ``<root>/cgroup.controllers``
    exists, else the v1 controllers pids, memory and cpu."""
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
            _try_child(base, move_thread=True)
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
        _try_child(base, move_thread=False)
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


# -- ahead of time -------------------------------------------------------------


class _Prefetch:
    """One probe on its own thread. Not threading.Thread: its start() waits
    until the new thread has run up to its first system call, which is the
    main thread's time (0.5-3 ms at ``sauci run``'s start)."""

    def __init__(self, root: Path | str) -> None:
        self.root = root
        self.result: tuple[Found | None, str] = (None, "not probed yet")
        self.done = threading.Event()
        _thread.start_new_thread(self._run, ())

    def _run(self) -> None:
        try:
            self.result = probe(self.root)
        except Exception as exc:  # as if probe had said so itself
            self.result = (None, f"cannot detect cgroups: {exc}")
        finally:
            self.done.set()


_prefetched: dict[str, _Prefetch] = {}
_prefetched_lock = threading.Lock()
_exit_hook = False


def prefetch(root: Path | str = DEFAULT_ROOT) -> None:
    """Start :func:`probe` on a thread; the next :func:`take` for the same
    ``root`` gets its answer. Does nothing while one for ``root`` is pending."""
    global _exit_hook
    with _prefetched_lock:
        key = str(root)
        if key in _prefetched:
            return
        if not _exit_hook:
            _exit_hook = True
            import atexit

            # A probe ended by the interpreter's exit would leave its
            # cgroup directory behind: let an unused one finish first.
            atexit.register(_finish)
        _prefetched[key] = _Prefetch(root)


def take(root: Path | str) -> tuple[Found | None, str] | None:
    """The answer of the pending :func:`prefetch` for ``root`` (waiting for it),
    used up; None when there is none."""
    with _prefetched_lock:
        pending = _prefetched.pop(str(root), None)
    if pending is None:
        return None
    pending.done.wait()
    return pending.result


def _finish() -> None:
    with _prefetched_lock:
        pending = list(_prefetched.values())
    for probing in pending:
        probing.done.wait(timeout=5)
