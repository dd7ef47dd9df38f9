"""DockerSandbox's limits, both ways: a step's limits (over the sandbox's) as
docker host-config options, and a container's end told back as the limit it
ran into (out of memory, the process limit) in its StepResult.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sauci.core.logsink import format_size
from sauci.core.models import EndedBy, Limits, Step, StepResult
from sauci.typing import LogWriter

__all__ = ["host_limits", "pids_events_path", "pids_max_hits", "step_limits", "step_result"]


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


def pids_events_path(info: Mapping[str, Any]) -> Path | None:
    """The container's ``pids.events`` on this host, when the daemon runs here."""
    pid = info.get("State", {}).get("Pid")
    if not pid:
        return None
    try:
        with open(f"/proc/{pid}/cgroup", encoding="ascii") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return None
    for line in lines:
        _, ctrls, path = line.split(":", 2)
        if "pids" in ctrls.split(","):
            candidate = Path("/sys/fs/cgroup/pids") / path.lstrip("/") / "pids.events"
        elif ctrls == "":
            candidate = Path("/sys/fs/cgroup") / path.lstrip("/") / "pids.events"
        else:
            continue
        if candidate.exists():
            return candidate
    return None


def pids_max_hits(path: Path | None) -> int:
    if path is None:
        return 0
    try:
        for line in path.read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "max":
                return int(value)
    except (OSError, ValueError):
        pass
    return 0


def step_result(
    step: Step,
    limits: Limits,
    code: int | None,
    state: Mapping[str, Any],
    ended_by: EndedBy | None,
    pids_hits: int,
    log: LogWriter,
    started: float,
) -> StepResult:
    """The step's result from its exit code and the container's final ``state``."""
    exit_code, sig = code, None
    # docker-init exits 128 + n when the step was killed by signal n.
    if code is not None and 128 < code <= 128 + 64:
        exit_code, sig = None, code - 128
    reason: str | None = None
    if ended_by is EndedBy.TIMEOUT:
        reason = f"killed after {step.timeout:g} s timeout"
    elif ended_by is EndedBy.CANCELLED:
        reason = "cancelled"
    if (code != 0 or ended_by is not None) and ended_by is not EndedBy.CANCELLED:
        cause: tuple[EndedBy, str] | None = None
        if state.get("OOMKilled") and limits.memory:
            at = format_size(limits.memory)
            cause = (EndedBy.OUT_OF_MEMORY, f"out of memory at {at} limit")
        elif pids_hits > 0:
            cause = (EndedBy.PROCESS_LIMIT, f"process limit of {limits.processes} reached")
        if cause is not None:
            ended_by = cause[0]
            reason = cause[1] if reason is None else f"{cause[1]}; {reason}"
    return StepResult(
        exit_code=exit_code,
        signal=sig,
        duration=time.monotonic() - started,
        ended_by=ended_by,
        reason=reason,
        log_truncated=log.exceeded,
    )
