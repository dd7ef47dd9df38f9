"""The step's own container in DockerSandbox: created locked down (no
capabilities, read-only root, memory-backed /tmp, limits), attached before it
starts, and supervised to its end: output copied to the log, cancel and the
step's timeout answered with SIGTERM, then SIGKILL after the grace period.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sauci.core.models import Limits, StepResult
from sauci.sandbox._cache_bind import cache_bind
from sauci.sandbox._docker_daemon import (
    POLL_INTERVAL,
    container_labels,
    container_name,
    create_container,
    signal_container,
)
from sauci.sandbox._docker_limits import (
    PidsWatch,
    container_pids_dir,
    host_limits,
    prepare_pids_dir,
    remove_pids_dir,
    step_result,
)
from sauci.sandbox._docker_stream import supervise_stream
from sauci.sandbox._handover import hand_over_tools
from sauci.sandbox._library_bind import library_binds
from sauci.sandbox._steps import Job, StepClock

__all__ = ["create_step_container", "run_step_container", "step_binds"]


def create_step_container(
    api: Any,
    errors: Any,
    job: Job,
    image: str,
    limits: Limits,
    network: str | None = None,
    *,
    owner: str,
    user: tuple[int, int],
    workspace_path: str,
    tmp_size: int,
    read_only: bool,
) -> str:
    step = job.step
    workdir = workspace_path + (f"/{step.workdir}" if step.workdir else "")
    host_config = api.create_host_config(
        binds=step_binds(job, workspace_path, user),
        network_mode=network or ("bridge" if step.network else "none"),
        **host_limits(limits),
        init=True,  # an init as pid 1: signals reach the step, zombies are reaped
        cap_drop=["ALL"],
        security_opt=["no-new-privileges"],
        read_only=read_only,
        # Writable scratch that is memory (counted in the limit), not the
        # daemon's disk: a step cannot fill the data root.
        tmpfs={"/tmp": f"size={tmp_size}", "/var/tmp": f"size={tmp_size}"},
        log_config={"type": "none"},  # output comes through attach only
    )
    return create_container(
        api,
        errors,
        image,
        of="",
        what=f"a container for step {step.name!r}",
        command=[*step.shell, step.script()],
        user=f"{user[0]}:{user[1]}",
        environment=dict(job.env),
        working_dir=workdir,
        labels=container_labels(owner, step.name, job.label),
        name=container_name(owner, job.label),
        host_config=host_config,
    )


def run_step_container(
    api: Any,
    errors: Any,
    job: Job,
    container: str,
    limits: Limits,
    *,
    grace: float,
    cgroups: tuple[str, str] | None = None,
) -> StepResult:
    """Start ``container`` and supervise it to its end; its result.

    ``cgroups``: the daemon's cgroup driver and version, when it runs on
    this host (see :func:`prepare_pids_dir`).
    """
    # Attached before the start, so no output is missed (there are no
    # container logs to fall back on: the log driver is "none").
    sock = api.attach_socket(container, params={"stdout": 1, "stderr": 1, "stream": 1})
    # The pids counters are watched from before the start where the cgroup
    # can be made ahead (a fork bomb may be over, and its cgroup removed,
    # before the start's answer arrives), else from right after it.
    prepared = prepare_pids_dir(cgroups, container)
    pids = PidsWatch(prepared)
    try:
        api.start(container)
        found = container_pids_dir(api.inspect_container(container))
        if found is not None and found != prepared:
            pids.stop()
            pids = PidsWatch(found)
        return _supervise(api, errors, job, container, limits, sock, pids, grace)
    finally:
        pids.stop()
        sock.close()
        remove_pids_dir(prepared)


def _supervise(
    api: Any,
    errors: Any,
    job: Job,
    container: str,
    limits: Limits,
    sock: Any,
    pids: PidsWatch,
    grace: float,
) -> StepResult:
    clock = StepClock(job, grace)

    def ended() -> int | None:
        try:
            status = api.wait(container, timeout=POLL_INTERVAL * 4)
        except Exception as exc:  # requests' ReadTimeout: still running
            if isinstance(exc, errors.NotFound):
                raise
            return None
        return int(status.get("StatusCode", -1))

    exit_code = supervise_stream(
        job,
        sock,
        clock,
        terminate=lambda: signal_container(api, errors, container, "SIGTERM"),
        kill=lambda: signal_container(api, errors, container, "SIGKILL"),
        ended=ended,
    )
    state = api.inspect_container(container).get("State", {})
    pids.stop()  # the step's last fork is done: what the cgroup said is final
    return step_result(job, limits, exit_code, state, clock.ended_by, pids)


def step_binds(job: Job, workspace_path: str, user: tuple[int, int]) -> dict[str, dict[str, str]]:
    """The workspace, the repository's pip/uv download cache at its host path,
    and SauCI's library read-only when the step asks (_library_bind)."""
    binds = {str(job.workspace): {"bind": workspace_path, "mode": "rw"}}
    binds.update(library_binds(job.env))
    tools = cache_bind(job.env, (user[0],))
    if tools is not None:
        if os.geteuid() == 0:
            hand_over_tools(Path(tools), *user)
        binds[tools] = {"bind": tools, "mode": "rw"}
    return binds
