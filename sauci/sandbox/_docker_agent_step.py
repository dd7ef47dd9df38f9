"""A step run by the agent of a container of the build's pool (see
``_docker_agent``): one line written to the agent, the step's output read
until its end line, no Docker API call on the way unless the step is
terminated or killed.

As with a ``docker exec`` (``_docker_exec``), the step's command runs under
the ``/bin/sh`` prologue that kills what its uid still has in the container
and empties /tmp, /var/tmp and /dev/shm; the agent kills what the step left
once its command has ended. Timeout and cancel: SIGTERM to the command (an
exec), then the container is killed after the grace period. The container
is given back for the next step only when the step ended on its own, with
what it left killed, not at its memory or process limit.
"""

from __future__ import annotations

import os
import secrets
import select
import ssl
from typing import Any

from sauci.core.models import Limits, StepResult
from sauci.exceptions import SandboxError
from sauci.sandbox._docker_agent import EndScanner, StepAgentLost, request
from sauci.sandbox._docker_daemon import signal_container
from sauci.sandbox._docker_exec import TERMINATE, run_pooled, settled_oom_count, wrapper
from sauci.sandbox._docker_limits import PidsWatch, step_result
from sauci.sandbox._docker_pool import ContainerPool, Held, oom_kills
from sauci.sandbox._docker_stream import supervise_stream
from sauci.sandbox._steps import Job, StepClock

__all__ = ["run_with_agent"]


def run_with_agent(
    pool: ContainerPool,
    job: Job,
    image: str,
    limits: Limits,
    cgroups: tuple[str, str] | None,
    *,
    grace: float,
) -> StepResult:
    """Run ``job`` by the agent of a container of ``pool``; its result."""
    api, errors = pool.api, pool.errors
    step = job.step
    workdir = pool.workspace_path + (f"/{step.workdir}" if step.workdir else "")
    for attempt in range(2):
        held = pool.take(job, image, limits, cgroups)
        if held.sock is None:  # the pool found the agent unusable: a docker exec
            pool.give_back(held, reuse=True)
            return run_pooled(pool, job, image, limits, cgroups, grace=grace)
        if _idle(held.sock):
            break
        # Its agent has ended (something outside SauCI stopped the container
        # between two steps): once more, in a new one.
        pool.give_back(held, reuse=False)
        if attempt:
            raise StepAgentLost(
                f"the step agent of a new container for step {step.name!r} ended before the step"
            )
    nonce = secrets.token_hex(16)
    argv = [
        "/bin/sh",
        "-c",
        wrapper(job.env, held.mounts, workdir),
        "sauci-step",
        *step.shell,
        step.script(),
    ]
    reuse = False
    try:
        try:
            _send(held.sock, request(nonce, job.env, argv))
        except OSError as exc:
            raise StepAgentLost(
                f"cannot reach the step agent in the container of step {step.name!r}: {exc}"
            ) from exc
        user = f"{pool.user[0]}:{pool.user[1]}"
        result, reuse = _run(api, errors, job, held, nonce, limits, user, grace)
        return result
    except errors.DockerException as exc:
        raise SandboxError(f"docker failed while running step {step.name!r}: {exc}") from exc
    finally:
        pool.give_back(held, reuse=reuse)


def _run(
    api: Any,
    errors: Any,
    job: Job,
    held: Held,
    nonce: str,
    limits: Limits,
    user: str,
    grace: float,
) -> tuple[StepResult, bool]:
    pids = PidsWatch(held.pids_dir, since_now=True)
    ooms = oom_kills(held.memory_dir)
    clock = StepClock(job, grace)
    killed = lost = False

    def terminate() -> None:
        try:
            made = api.exec_create(held.id, ["/bin/sh", "-c", TERMINATE], user=user)
            api.exec_start(made["Id"], detach=True)
        except errors.DockerException:  # at its process limit: the kill will do
            pass

    def kill() -> None:
        nonlocal killed
        killed = True
        signal_container(api, errors, held.id, "SIGKILL")

    def ended() -> int:
        """The agent's output closed before the step's end line: its container is down."""
        nonlocal lost
        lost = not killed
        return 128 + 9

    scan = EndScanner(nonce)
    try:
        code = supervise_stream(
            job, held.sock, clock, terminate=terminate, kill=kill, ended=ended, scan=scan
        )
    finally:
        pids.stop()
    after = oom_kills(held.memory_dir)
    if code == 128 + 9 and not killed and ooms is not None and after == ooms:
        after = settled_oom_count(held, ooms)
    oomed = ooms is not None and after is not None and after > ooms
    if lost and not oomed and not pids.reached and clock.ended_by is None:
        raise StepAgentLost(
            f"the step agent in the container of step {job.step.name!r} ended during the step "
            "(the container was stopped or killed outside SauCI)"
        )
    result = step_result(job, limits, code, {"OOMKilled": oomed}, clock.ended_by, pids)
    fit = (
        not lost
        and not killed
        and scan.swept
        and clock.ended_by is None
        and not oomed
        and not pids.reached
        and code >= 0
    )
    return result, fit


def _idle(sock: Any) -> bool:
    """Whether the agent's stream has nothing to say (else it has ended)."""
    if isinstance(sock, ssl.SSLSocket) and sock.pending():
        return False
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLIN)
    return not poller.poll(0)


def _send(sock: Any, data: bytes) -> None:
    """Write all of ``data`` to the agent's stdin (the fd may be non-blocking)."""
    if isinstance(sock, ssl.SSLSocket):
        sock.setblocking(True)
        sock.sendall(data)
        return
    fd = sock.fileno()
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view) :]
        except BlockingIOError:
            if not poller.poll(5000):
                raise TimeoutError("the step agent does not read its requests") from None
