"""Find and end every process of a step through a cgroup, where the machine allows one.

A step's processes can leave its process group (``setsid``), double-fork away
from its parent and outlive its main process; a cgroup holds all of them
whatever they do. Without one, :mod:`sauci.sandbox._pscan` falls back to what
/proc tells.

Layout: a step cgroup is made *under the cgroup this process already lives in*
(for each cgroup v1 controller, or in the v2 unified tree), so that steps stay
inside whatever limits the server itself runs under, and named
``<prefix><label>-<random>`` so that :func:`sweep` can find what a crashed
server left behind.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal as _signal
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

from sauci._logging import get_logger
from sauci.core.models import Limits
from sauci.sandbox._cglayout import CgroupEvents, CgroupLayout, cgroup_name, detect_cgroups
from sauci.sandbox._cgroups import DEFAULT_ROOT
from sauci.sandbox._cgroups import read_file as _read
from sauci.sandbox._cgroups import write_file as _write

__all__ = [
    "CannotEnter",
    "CgroupEvents",
    "CgroupLayout",
    "StepCgroup",
    "cgroup_name",
    "detect_cgroups",
    "sweep",
]

log = get_logger(__name__)

T = TypeVar("T")
# start(argv, preexec_fn) -> the started process (a subprocess.Popen)
Starter = Callable[[list[str], Callable[[], None] | None], T]

_SH = "/bin/sh"
_SH_IS_DASH = os.path.basename(os.path.realpath(_SH)) == "dash"
_ENTER = 'echo 0 >"$0" || { echo "sauci: cannot enter the step cgroup $0" >&2; exit 125; }; '


class CannotEnter(OSError):
    """This thread may not enter the step's cgroup (cgroup v1): nothing was started."""


def _counter(path: Path, key: str) -> int | None:
    """The value of ``key`` in a "key value" lines file (None when absent)."""
    try:
        text = _read(path)
    except OSError:
        return None
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == key:
            try:
                return int(parts[1])
            except ValueError:
                return None
    return None


_NO_LIMITS = Limits()  # none: the cgroup only holds the step's processes, to count and kill them


class StepCgroup:
    """The cgroup(s) of one step: create, place the child, signal, count, remove."""

    def __init__(self, layout: CgroupLayout, name: str, dirs: Mapping[str, Path]) -> None:
        self.layout = layout
        self.name = name
        self.dirs = dict(dirs)
        # The controller whose cgroup.procs lists the step's processes.
        self._track = self.dirs.get("pids") or next(iter(self.dirs.values()))
        self._events: CgroupEvents | None = None
        self.processes: int | None = None
        self.memory: int | None = None

    @property
    def controllers(self) -> frozenset[str]:
        if self.layout.version == 1:
            return frozenset(self.dirs)
        return self.layout.controllers

    @classmethod
    def create(cls, layout: CgroupLayout, name: str, limits: Limits = _NO_LIMITS) -> StepCgroup:
        """Make the step's cgroup(s) and write the limits. Cheap: one mkdir and a
        write per controller used; memory and cpu only when limited."""
        wanted = {"pids": True, "memory": limits.memory is not None, "cpu": limits.cpu is not None}
        if layout.version == 1:
            ctrls = [c for c in layout.bases if wanted.get(c)] or [next(iter(layout.bases))]
            dirs = {c: layout.bases[c] / name for c in ctrls}
        else:
            dirs = {"unified": layout.bases["unified"] / name}
        made: list[Path] = []
        try:
            for d in dirs.values():
                os.mkdir(d)
                made.append(d)
            self = cls(layout, name, dirs)
            self._set_limits(limits)
        except OSError:
            for d in reversed(made):
                with contextlib.suppress(OSError):
                    os.rmdir(d)
            raise
        return self

    def _dir(self, ctrl: str) -> Path | None:
        if self.layout.version == 1:
            return self.dirs.get(ctrl)
        return self.dirs["unified"] if ctrl in self.layout.controllers else None

    def _set_limits(self, limits: Limits) -> None:
        memory, processes, cpu = limits.memory, limits.processes, limits.cpu
        v1 = self.layout.version == 1
        if processes is not None and (d := self._dir("pids")) is not None:
            # v1: the spawning thread sits in the cgroup while the child
            # starts; one more until it has left (see spawn).
            _write(d / "pids.max", str(processes + 1 if v1 else processes))
            self.processes = processes
        if memory is not None and (d := self._dir("memory")) is not None:
            if v1:
                _write(d / "memory.limit_in_bytes", str(memory))
                # No swapping past the limit either (docker --memory-swap=same).
                if (d / "memory.memsw.limit_in_bytes").exists():
                    _write(d / "memory.memsw.limit_in_bytes", str(memory))
            else:
                _write(d / "memory.max", str(memory))
                if (d / "memory.swap.max").exists():
                    _write(d / "memory.swap.max", "0")
            self.memory = memory
        if cpu is not None and (d := self._dir("cpu")) is not None:
            period = 100_000
            quota = max(1000, int(cpu * period))
            if v1:
                _write(d / "cpu.cfs_period_us", str(period))
                _write(d / "cpu.cfs_quota_us", str(quota))
            else:
                _write(d / "cpu.max", f"{quota} {period}")

    def spawn(
        self,
        argv: Sequence[str],
        start: Starter[T],
        *,
        env: Mapping[str, str] | None = None,
        own_thread: bool = False,
    ) -> T:
        """Call ``start(argv, preexec_fn)`` so that the new process is born in the cgroup.

        cgroup v1: this thread moves itself into the step cgroup (``tasks``
        takes a thread id), starts the child, and moves back; with
        ``own_thread``, a short-lived thread of its own moves in, starts the
        child and ends, which leaves the cgroup without a move: moving back is
        a second move, which waits for an RCU grace period (10-15 ms measured)
        once the first move's fast spell is over. Not for a child that must
        die with the thread that started it (bwrap's --die-with-parent). The child is
        born inside, so nothing it forks can escape, and subprocess keeps its
        fast vfork() start: a preexec_fn would force fork(), which measured
        2.7 ms per step for a small server and 21 ms with 500 MB resident,
        against 1.0 ms for this. Other threads are not affected.

        cgroup v2 cannot move one thread of a domain cgroup. Where /bin/sh is
        dash, the child is dash writing itself into cgroup.procs and then
        exec'ing the command (same pid): a constant 0.6 ms, where a
        preexec_fn measured 1.5 ms (small server) to 18-28 ms (500 MB
        resident). dash adds only PWD to the environment, which the script
        puts back as ``env`` had it. Elsewhere a preexec_fn does it.
        """
        if self.layout.version == 2:
            procs = str(self.dirs["unified"] / "cgroup.procs")
            if _SH_IS_DASH and env is not None:
                if "PWD" in env:
                    script, extra = _ENTER + 'PWD=$1; export PWD; shift; exec "$@"', [env["PWD"]]
                else:
                    script, extra = _ENTER + 'unset PWD; exec "$@"', []
                return start([_SH, "-c", script, procs, *extra, *argv], None)
            path = os.fsencode(procs)

            def _enter() -> None:
                fd = os.open(path, os.O_WRONLY)
                os.write(fd, b"0")
                os.close(fd)

            return start(list(argv), _enter)
        if own_thread:
            return self._spawn_on_own_thread(argv, start)
        tid = str(threading.get_native_id())
        moved: list[str] = []
        try:
            for ctrl, d in self.dirs.items():
                try:
                    _write(d / "tasks", tid)
                except OSError as exc:
                    raise CannotEnter(
                        f"a step cannot enter its cgroup {d} ({exc.strerror})"
                    ) from exc
                moved.append(ctrl)
            return start(list(argv), None)
        finally:
            for ctrl in moved:
                try:
                    _write(self.layout.bases[ctrl] / "tasks", tid)
                except OSError as exc:  # pragma: no cover - would need a broken cgroupfs
                    log.error("cgroup_leave_failed", cgroup=str(self.dirs[ctrl]), error=str(exc))
            if self.processes is not None and "pids" in self.dirs:
                _write(self.dirs["pids"] / "pids.max", str(self.processes))

    def _spawn_on_own_thread(self, argv: Sequence[str], start: Starter[T]) -> T:
        """cgroup v1: :meth:`spawn` from a thread that enters and then ends."""
        done: list[tuple[bool, object]] = []
        tids: list[int] = []

        def enter_and_start() -> None:
            try:
                tids.append(threading.get_native_id())
                for d in self.dirs.values():
                    try:
                        _write(d / "tasks", str(tids[0]))
                    except OSError as exc:
                        raise CannotEnter(
                            f"a step cannot enter its cgroup {d} ({exc.strerror})"
                        ) from exc
                done.append((True, start(list(argv), None)))
            except BaseException as exc:  # raised again on the caller's thread
                done.append((False, exc))

        starter = threading.Thread(target=enter_and_start, name="sauci-step-start", daemon=True)
        starter.start()
        try:
            starter.join()
        except BaseException:  # Ctrl-C meanwhile: nothing it started may be left running
            starter.join()
            self.kill_all()
            raise
        # The thread has finished; the kernel lets go of it a moment later, and
        # until then it counts against pids.max.
        gone = time.monotonic() + 1.0
        while tids and os.path.exists(f"/proc/self/task/{tids[0]}") and time.monotonic() < gone:
            time.sleep(0.0001)
        if self.processes is not None and "pids" in self.dirs:
            _write(self.dirs["pids"] / "pids.max", str(self.processes))
        ok, value = done[0]
        if not ok:
            raise value  # type: ignore[misc]
        return value  # type: ignore[return-value]

    def pids(self) -> list[int]:
        """The step's live processes (never this server's own pid)."""
        me = os.getpid()
        try:
            text = _read(self._track / "cgroup.procs")
        except FileNotFoundError:
            return []
        return [p for p in map(int, text.split()) if p != me]

    def signal(self, sig: int) -> None:
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    def read_events(self) -> CgroupEvents:
        oom: int | None = None
        failcnt = pids_max = 0
        if (d := self._dir("memory")) is not None:
            if self.layout.version == 1:
                oom = _counter(d / "memory.oom_control", "oom_kill")
                try:
                    failcnt = int(_read(d / "memory.failcnt").strip() or 0)
                except (OSError, ValueError):
                    failcnt = 0
            else:
                oom = _counter(d / "memory.events", "oom_kill")
                failcnt = _counter(d / "memory.events", "max") or 0
        if (d := self._dir("pids")) is not None:
            pids_max = _counter(d / "pids.events", "max") or 0
        return CgroupEvents(oom_kills=oom, memory_failures=failcnt, pids_max_hits=pids_max)

    def events(self) -> CgroupEvents:
        """The counters as they were before :meth:`kill_all` (which forbids forks)."""
        return self._events if self._events is not None else self.read_events()

    def kill_all(self, timeout: float = 10.0) -> bool:
        """SIGKILL every process until the cgroup is empty; True when it is."""
        if self._events is None:
            self._events = self.read_events()
        if (d := self._dir("pids")) is not None:
            # A fork bomb cannot replace what we kill once forks are forbidden.
            with contextlib.suppress(OSError):
                _write(d / "pids.max", "0")
        if self.layout.version == 2 and (self.dirs["unified"] / "cgroup.kill").exists():
            with contextlib.suppress(OSError):
                _write(self.dirs["unified"] / "cgroup.kill", "1")
        return _kill_until_empty(self.pids, timeout)

    def remove(self, timeout: float = 5.0) -> bool:
        """Kill what is left, wait for the cgroup to empty, rmdir it."""
        self.kill_all(timeout)
        ok = True
        for d in self.dirs.values():
            ok = _rmdir_retry(d, time.monotonic() + timeout) and ok
        return ok


def _kill_until_empty(
    list_pids: Callable[[], list[int]],
    timeout: float,
    *,
    before: Callable[[], None] | None = None,
) -> bool:
    deadline = time.monotonic() + timeout
    pause = 0.001
    while True:
        pids = list_pids()
        if not pids:
            return True
        if time.monotonic() >= deadline:
            log.warning("processes_survived_kill", count=len(pids), pids=pids[:20])
            return False
        if before is not None:
            before()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, _signal.SIGKILL)
        time.sleep(pause)
        pause = min(pause * 2, 0.05)


def _rmdir_retry(path: Path, deadline: float) -> bool:
    pause = 0.001
    while True:
        try:
            os.rmdir(path)
            return True
        except FileNotFoundError:
            return True
        except OSError as exc:
            if exc.errno != errno.EBUSY or time.monotonic() >= deadline:
                log.warning("cgroup_remove_failed", cgroup=str(path), error=str(exc))
                return False
            # Exiting processes leave the cgroup a moment after SIGKILL.
            try:
                for pid in map(int, _read(path / "cgroup.procs").split()):
                    if pid != os.getpid():
                        os.kill(pid, _signal.SIGKILL)
            except (OSError, ValueError):
                pass
        time.sleep(pause)
        pause = min(pause * 2, 0.05)


def sweep(
    prefix: str = "sauci-",
    *,
    root: Path | str = DEFAULT_ROOT,
    layout: CgroupLayout | None = None,
) -> list[str]:
    """Kill the processes of, and remove, every step cgroup named ``<prefix>...``.

    For ``sauci serve`` at start: what a crashed server left behind. Looks
    under this process's own cgroups (where LocalSandbox makes them), so give
    a prefix that only your server uses when several share a machine.
    Returns the names removed.
    """
    if layout is None:
        layout, _ = detect_cgroups(root)
        if layout is None:
            return []
    names: dict[str, dict[str, Path]] = {}
    for ctrl, base in layout.bases.items():
        try:
            with os.scandir(base) as entries:
                for entry in entries:
                    if entry.name.startswith(prefix) and entry.is_dir(follow_symlinks=False):
                        names.setdefault(entry.name, {})[ctrl] = Path(entry.path)
        except OSError:
            continue
    removed: list[str] = []
    for name, dirs in sorted(names.items()):
        cg = StepCgroup(layout, name, dirs)
        if cg.remove():
            removed.append(name)
        log.info("cgroup_swept", cgroup=name, removed=name in removed)
    return removed
