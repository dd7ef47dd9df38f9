"""DockerSandbox's limits, both ways: a step's limits (over the sandbox's) as
docker host-config options, and a container's end told back as the limit it
ran into (out of memory, the process limit) in its StepResult.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sauci.core.models import EndedBy, Limits, Step, StepResult
from sauci.sandbox._steps import Job, ended_result, out_of_memory, process_limit

__all__ = [
    "PidsWatch",
    "container_memory_dir",
    "container_pids_dir",
    "host_limits",
    "prepare_pids_dir",
    "remove_pids_dir",
    "step_limits",
    "step_result",
]


def step_limits(step: Step, defaults: Limits, default_processes: int) -> Limits:
    """The step's own limits, else the sandbox's; a process limit always."""
    memory = step.limits.memory if step.limits.memory is not None else defaults.memory
    cpu = step.limits.cpu if step.limits.cpu is not None else defaults.cpu
    processes = step.limits.processes or defaults.processes or default_processes
    return Limits(memory=memory, processes=processes, cpu=cpu)


def host_limits(limits: Limits) -> dict[str, Any]:
    """``limits`` as options of docker's ``create_host_config``."""
    memory, processes, cpu = limits.memory, limits.processes, limits.cpu
    return {
        "pids_limit": processes,
        "mem_limit": memory,
        "memswap_limit": memory,  # no swap beyond the limit
        "nano_cpus": int(cpu * 1e9) if cpu else None,
    }


def container_pids_dir(info: Mapping[str, Any]) -> Path | None:
    """The container's pids cgroup directory on this host, when the daemon runs here."""
    return container_cgroup_dir(info, "pids", "pids.events", "pids.events")


def container_memory_dir(info: Mapping[str, Any]) -> Path | None:
    """The container's memory cgroup on this host (its OOM kills are counted
    there), when the daemon runs here."""
    return container_cgroup_dir(info, "memory", "memory.oom_control", "memory.events")


def container_cgroup_dir(
    info: Mapping[str, Any], controller: str, v1_file: str, v2_file: str
) -> Path | None:
    """The container's cgroup directory of ``controller`` on this host: the v1
    hierarchy's when it holds ``v1_file``, else the v2 one's when it holds ``v2_file``.

    The directory is taken from ``/proc/<pid>/cgroup`` of the container's main
    process and used only if its path names the container's id: a daemon on
    another host reports a pid that may belong to an unrelated local process.
    """
    pid = info.get("State", {}).get("Pid")
    ident = str(info.get("Id", ""))
    if not pid or not ident:
        return None
    try:
        with open(f"/proc/{pid}/cgroup", encoding="ascii") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return None
    for line in lines:
        _, ctrls, path = line.split(":", 2)
        if ident not in path:
            continue
        if controller in ctrls.split(","):
            candidate, marker = Path("/sys/fs/cgroup", controller, path.lstrip("/")), v1_file
        elif ctrls == "":  # cgroup v2
            candidate, marker = Path("/sys/fs/cgroup", path.lstrip("/")), v2_file
        else:
            continue
        if (candidate / marker).exists():
            return candidate
    return None


def prepare_pids_dir(layout: tuple[str, str] | None, container: str) -> Path | None:
    """Make the pids cgroup the daemon is about to give the created container.

    ``layout`` is the daemon's (cgroup driver, cgroup version). With the
    cgroupfs driver the container's cgroup is ``<parent>/<id>`` in the pids
    hierarchy (SauCI sets no parent, so docker's default ``/docker``); made
    before the start (runc takes an existing directory), its counters are
    open before the step's first fork. None when the layout is not known or
    SauCI may not write there; the caller checks after the start that the
    container really landed in it (a daemon with ``--cgroup-parent``, or on
    another host, puts it elsewhere).
    """
    if layout is None or layout[0] != "cgroupfs" or not re.fullmatch(r"[0-9a-f]{64}", container):
        return None
    root = Path("/sys/fs/cgroup") if layout[1] == "2" else Path("/sys/fs/cgroup/pids")
    base = root / "docker"
    if not (base / "cgroup.procs").exists():
        return None
    directory = base / container
    try:
        directory.mkdir()
    except OSError:
        return None
    return directory


def remove_pids_dir(directory: Path | None) -> None:
    """Remove what :func:`prepare_pids_dir` made, if docker has not (empty by now)."""
    if directory is not None:
        with contextlib.suppress(OSError):  # gone already, or docker's own
            directory.rmdir()


class PidsWatch:
    """Reads a container's ``pids.events`` (and ``pids.peak``) until it is gone.

    A fork bomb whose shell dies of a refused fork takes its container down
    within tens of milliseconds, and docker removes the cgroup with it, so
    the counters are read every few milliseconds by a thread of their own
    (cgroup v1 sends no notification on ``pids.events``). What they last said
    is kept: a hit counts even when the cgroup is gone by the time the step's
    end is examined.
    """

    INTERVAL = 0.005

    def __init__(self, directory: Path | None, *, since_now: bool = False) -> None:
        self.hits = 0  # forks refused at the limit
        self.peak = 0  # most tasks at once, where the kernel keeps pids.peak
        self.limit: int | None = None
        self._base_hits = 0
        self._base_peak = 0
        self._fds: dict[str, int] = {}
        self._gone = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if directory is None:
            return
        for name in ("pids.events", "pids.peak", "pids.max"):
            try:
                self._fds[name] = os.open(directory / name, os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                continue
        if "pids.events" not in self._fds:
            self._close()
            return
        self._sample()
        if since_now:  # a reused container's counters: only what happens from here counts
            self._base_hits, self._base_peak = self.hits, self.peak
        self._thread = threading.Thread(target=self._run, name="sauci-pids-watch", daemon=True)
        self._thread.start()

    @property
    def reached(self) -> bool:
        """Whether the step ran into its process limit."""
        peaked = self.limit is not None and self._base_peak < self.limit <= self.peak
        return self.hits > self._base_hits or peaked

    def stop(self) -> None:
        """One last reading (when the cgroup is still there), then no more."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample()
        self._close()

    def _run(self) -> None:
        while not self._gone and not self._stop.wait(self.INTERVAL):
            self._sample()

    def _sample(self) -> None:
        events = None if self._gone else self._read("pids.events")
        if events is None:  # the cgroup is gone: nothing more to learn
            self._gone = True
            return
        for line in events.splitlines():
            key, _, value = line.partition(" ")
            if key == "max":
                self.hits = max(self.hits, _int(value) or 0)
        self.peak = max(self.peak, _int(self._read("pids.peak")) or 0)
        if self.limit is None:  # a cgroup made ahead has its limit once started
            self.limit = _int(self._read("pids.max"))

    def _read(self, name: str) -> str | None:
        fd = self._fds.get(name)
        if fd is None:
            return None
        try:
            return os.pread(fd, 256, 0).decode("ascii", "replace")
        except OSError:  # ENODEV once the cgroup is removed
            return None

    def _close(self) -> None:
        fds, self._fds = self._fds, {}
        for fd in fds.values():
            os.close(fd)


def _int(text: str | None) -> int | None:
    try:
        return int(text.strip()) if text is not None else None
    except ValueError:  # "max": no limit
        return None


def step_result(
    job: Job,
    limits: Limits,
    code: int | None,
    state: Mapping[str, Any],
    ended_by: EndedBy | None,
    pids: PidsWatch,
) -> StepResult:
    """The step's result from its exit code and the container's final ``state``."""
    exit_code, sig = code, None
    # docker-init exits 128 + n when the step was killed by signal n.
    if code is not None and 128 < code <= 128 + 64:
        exit_code, sig = None, code - 128

    def limit_hit() -> tuple[EndedBy, str] | None:
        if state.get("OOMKilled") and limits.memory:
            return out_of_memory(limits.memory)
        if pids.reached:
            return process_limit(limits.processes)
        return None

    return ended_result(
        job, exit_code, sig, failed=code != 0, ended_by=ended_by, limit_hit=limit_hit
    )
