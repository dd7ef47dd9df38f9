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

from sauci.core.models import StepResult
from sauci.sandbox._docker_agent import EndScanner, StepAgentLost, request
from sauci.sandbox._docker_exec import run_pooled, step_argv
from sauci.sandbox._docker_pool import Held
from sauci.sandbox._docker_step_watch import PoolStep, StepWatch, run_held
from sauci.sandbox._docker_stream import supervise_stream

__all__ = ["run_with_agent"]


def run_with_agent(todo: PoolStep) -> StepResult:
    """Run ``todo``'s job by the agent of a container of its pool; its result."""
    pool, job = todo.pool, todo.job
    for attempt in range(2):
        held = todo.take()
        if held.sock is None:  # the pool found the agent unusable: a docker exec
            pool.give_back(held, reuse=True)
            return run_pooled(todo)
        if _idle(held.sock):
            break
        # Its agent has ended (something outside SauCI stopped the container
        # between two steps): once more, in a new one.
        pool.give_back(held, reuse=False)
        if attempt:
            raise StepAgentLost(
                f"the step agent of a new container for step {job.step.name!r} "
                "ended before the step"
            )
    nonce = secrets.token_hex(16)
    argv = step_argv(job, held.mounts, todo.workdir)

    def run() -> tuple[StepResult, bool]:
        try:
            _send(held.sock, request(nonce, job.env, argv))
        except OSError as exc:
            raise StepAgentLost(
                f"cannot reach the step agent in the container of step {job.step.name!r}: {exc}"
            ) from exc
        return _run(todo, held, nonce)

    return run_held(todo, held, run)


def _run(todo: PoolStep, held: Held, nonce: str) -> tuple[StepResult, bool]:
    job = todo.job
    watch = StepWatch(todo, held)
    lost = False

    def ended() -> int:
        """The agent's output closed before the step's end line: its container is down."""
        nonlocal lost
        lost = not watch.killed
        return 128 + 9

    scan = EndScanner(nonce)
    try:
        code = supervise_stream(
            job,
            held.sock,
            watch.clock,
            terminate=watch.terminate,
            kill=watch.kill,
            ended=ended,
            scan=scan,
        )
    finally:
        watch.pids.stop()
    oomed = watch.oomed(code)
    if lost and not oomed and not watch.pids.reached and watch.clock.ended_by is None:
        raise StepAgentLost(
            f"the step agent in the container of step {job.step.name!r} ended during the step "
            "(the container was stopped or killed outside SauCI)"
        )
    result, own = watch.outcome(code, oomed)
    return result, own and not lost and scan.swept


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
