"""What watches one step in a container of the build's pool, however the
step is started (``docker exec``: ``_docker_exec``; the container's agent:
``_docker_agent_step``): its clock, its process limit, its memory cgroup's
OOM kills, how it is terminated and killed, and its result; and the
container given back for the next step only when the step ended on its own.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import attrs

from sauci.core.models import Limits, StepResult
from sauci.exceptions import SandboxError
from sauci.sandbox._docker_daemon import signal_container
from sauci.sandbox._docker_limits import PidsWatch, step_result
from sauci.sandbox._docker_pool import ContainerPool, Held, oom_kills
from sauci.sandbox._steps import Job, StepClock

__all__ = ["TERMINATE", "PoolStep", "StepWatch", "run_held", "settled_oom_count"]

# SIGTERM to the step's command (the prologue's pid, which it became).
TERMINATE = 'read -r w < /tmp/.sauci-step 2>/dev/null && kill -s TERM "$w" 2>/dev/null; exit 0'


@attrs.frozen
class PoolStep:
    """A job to run in a container of ``pool`` (by its agent or an exec)."""

    pool: ContainerPool
    job: Job
    image: str
    limits: Limits
    cgroups: tuple[str, str] | None
    grace: float

    @property
    def workdir(self) -> str:
        """The step's directory inside the container."""
        step = self.job.step
        return self.pool.workspace_path + (f"/{step.workdir}" if step.workdir else "")

    @property
    def user(self) -> str:
        """The step's ``uid:gid`` in the container."""
        return f"{self.pool.user[0]}:{self.pool.user[1]}"

    def take(self) -> Held:
        """A container of the pool for the step."""
        return self.pool.take(self.job, self.image, self.limits, self.cgroups)


def run_held(todo: PoolStep, held: Held, run: Callable[[], tuple[StepResult, bool]]) -> StepResult:
    """The result of ``run`` (``todo`` in ``held``), whose second value says
    whether ``held`` may run the next step; ``held`` given back either way."""
    reuse = False
    try:
        result, reuse = run()
        return result
    except todo.pool.errors.DockerException as exc:
        name = todo.job.step.name
        raise SandboxError(f"docker failed while running step {name!r}: {exc}") from exc
    finally:
        todo.pool.give_back(held, reuse=reuse)


class StepWatch:
    """``todo``'s step's clock, pids watch (stop it once the step has ended) and
    OOM count in ``held``; ``terminate`` and ``kill`` for its supervisor."""

    def __init__(self, todo: PoolStep, held: Held) -> None:
        self.api, self.errors = todo.pool.api, todo.pool.errors
        self.todo, self.held, self.user = todo, held, todo.user
        self.pids = PidsWatch(held.pids_dir, since_now=True)
        self.ooms = oom_kills(held.memory_dir)
        self.clock = StepClock(todo.job, todo.grace)
        self.killed = False

    def terminate(self) -> None:
        """SIGTERM to the step's command, by an exec."""
        try:
            made = self.api.exec_create(self.held.id, ["/bin/sh", "-c", TERMINATE], user=self.user)
            self.api.exec_start(made["Id"], detach=True)
        except self.errors.DockerException:  # at its process limit: the kill will do
            pass

    def kill(self) -> None:
        """The container killed (everything in it ends)."""
        self.killed = True
        signal_container(self.api, self.errors, self.held.id, "SIGKILL")

    def oomed(self, code: int) -> bool:
        """Whether the step that ended with ``code`` was killed at its memory limit."""
        after = oom_kills(self.held.memory_dir)
        if code == 128 + 9 and not self.killed and self.ooms is not None and after == self.ooms:
            after = settled_oom_count(self.held, self.ooms)
        return self.ooms is not None and after is not None and after > self.ooms

    def outcome(self, code: int, oomed: bool) -> tuple[StepResult, bool]:
        """The step's result, and whether it ended on its own: not by the
        clock, not killed, not at its memory or process limit."""
        job, limits, ended_by = self.todo.job, self.todo.limits, self.clock.ended_by
        result = step_result(job, limits, code, {"OOMKilled": oomed}, ended_by, self.pids)
        own = (
            not self.killed
            and self.clock.ended_by is None
            and not oomed
            and not self.pids.reached
            and code >= 0
        )
        return result, own


def settled_oom_count(held: Held, before: int, wait: float = 0.5) -> int | None:
    """The cgroup's OOM-kill count once it moves past ``before``, waiting at
    most ``wait`` seconds: the kernel counts an OOM kill after it has sent the
    SIGKILL, so a step it killed can end before the count says so."""
    deadline = time.monotonic() + wait
    count = oom_kills(held.memory_dir)
    while count == before and time.monotonic() < deadline:
        time.sleep(0.02)
        count = oom_kills(held.memory_dir)
    return count
