"""What every sandbox does with a step, whatever runs it: the protocol's ``run``
(a step cancelled while it waited, or whose ``workdir`` leaves the workspace,
never starts), the clock that ends it (cancel or timeout, then SIGKILL after
the grace period), and its result's reason (a timeout, a limit it hit)."""

from __future__ import annotations

import math
import os
import shutil
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import attrs

from sauci.core.logbudget import format_size
from sauci.core.models import EndedBy, Step, StepResult
from sauci.exceptions import SandboxError

if TYPE_CHECKING:
    from sauci.typing import LogWriter

__all__ = [
    "ISOLATED",
    "Job",
    "StepClock",
    "StepSandbox",
    "deadline",
    "ended_result",
    "find_program",
    "out_of_memory",
    "process_limit",
    "workdir",
]

# What a sandbox that runs each step in its own machine or container can
# enforce (docker and vm): limits, its own filesystem and its own network.
ISOLATED = frozenset(
    {
        "limits.memory",
        "limits.processes",
        "limits.cpu",
        "isolates_filesystem",
        "isolates_network",
    }
)


def find_program(program: str, what: str, packages: str) -> str:
    """The path of ``program``; a SandboxError naming the Debian ``packages`` to
    install when it is not on PATH."""
    found = shutil.which(program)
    if found is None:
        raise SandboxError(
            f"{what} ({program!r}) is not installed; install it with: apt-get install {packages}"
        )
    return found


@attrs.frozen
class Job:
    """One step handed to a sandbox: the arguments of ``Sandbox.run``, with the
    directory the command starts in (``cwd``) and when the run began. Made in
    one place (:meth:`StepSandbox.run`), so its fields are positional."""

    step: Step
    workspace: Path  # absolute
    cwd: Path
    log: LogWriter
    env: Mapping[str, str]
    cancel: threading.Event
    label: str
    started: float

    def result(self, exit_code: int | None, reason: str) -> StepResult:
        """The step's result when it ends before its command ran (``reason`` says why)."""
        return StepResult(
            exit_code=exit_code,
            duration=time.monotonic() - self.started,
            reason=reason,
            log_truncated=self.log.exceeded,
        )


class StepSandbox:
    """A sandbox's ``run``: what must not start does not; the rest is :meth:`_run`."""

    def run(
        self,
        step: Step,
        workspace: Path,
        log: LogWriter,
        *,
        env: Mapping[str, str],
        cancel: threading.Event,
        label: str,
    ) -> StepResult:
        """Run ``step``; see :meth:`sauci.typing.Sandbox.run`."""
        started = time.monotonic()
        if cancel.is_set():  # cancelled while waiting for its turn: start nothing
            return StepResult(exit_code=None, ended_by=EndedBy.CANCELLED, reason="cancelled")
        workspace = Path(os.path.abspath(workspace))
        cwd, problem = workdir(workspace, step.workdir)
        job = Job(step, workspace, cwd, log, env, cancel, label, started)
        if problem is not None:
            log.write(f"sauci: error: {problem}\n".encode())
            return job.result(1, problem)
        return self._run(job)

    def _run(self, job: Job) -> StepResult:
        raise NotImplementedError


def workdir(workspace: Path, name: str | None) -> tuple[Path, str | None]:
    """Where the step's command starts, and the problem when it cannot start there."""
    if not name:
        if not workspace.is_dir():
            return workspace, f"workspace {str(workspace)!r} is not a directory"
        return workspace, None
    cwd = workspace / name
    try:
        inside = cwd.resolve().is_relative_to(workspace.resolve())
    except OSError:
        inside = False
    if not inside:
        return cwd, f"workdir {name!r} is outside the workspace"
    if not cwd.is_dir():
        return cwd, f"workdir {name!r} does not exist in the workspace"
    return cwd, None


def deadline(job: Job) -> float:
    """When the step's timeout ends it (``math.inf`` without one)."""
    timeout = job.step.timeout
    return job.started + timeout if timeout and timeout > 0 else math.inf


class StepClock:
    """When a running step is asked to end (``cancel`` set, its timeout passed)
    and when it is killed (``grace`` seconds later)."""

    def __init__(self, job: Job, grace: float) -> None:
        self.deadline = deadline(job)
        self.cancel = job.cancel
        self.grace = grace
        self.ended_by: EndedBy | None = None
        self.kill_at = math.inf
        self.killed = False

    def tick(self, now: float, terminate: Callable[[], object], kill: Callable[[], object]) -> bool:
        """``terminate`` once the step must end, ``kill`` when its grace is over;
        True when it killed just now."""
        if self.ended_by is None:
            if self.cancel.is_set():
                self.ended_by = EndedBy.CANCELLED
            elif now >= self.deadline:
                self.ended_by = EndedBy.TIMEOUT
            if self.ended_by is not None:
                terminate()
                self.kill_at = now + self.grace
        if not self.killed and now >= self.kill_at:
            kill()
            self.killed = True
            return True
        return False

    def left(self, now: float, most: float) -> float:
        """How long to wait before the clock must be looked at again (at most ``most``)."""
        return max(0.0, min(most, self.deadline - now, self.kill_at - now))


def out_of_memory(limit: int) -> tuple[EndedBy, str]:
    return EndedBy.OUT_OF_MEMORY, f"out of memory at {format_size(limit)} limit"


def process_limit(limit: int | None) -> tuple[EndedBy, str]:
    return EndedBy.PROCESS_LIMIT, f"process limit of {limit} reached"


def ended_result(
    job: Job,
    exit_code: int | None,
    sig: int | None,
    *,
    failed: bool,
    ended_by: EndedBy | None,
    limit_hit: Callable[[], tuple[EndedBy, str] | None],
) -> StepResult:
    """The result of a step whose command ran. Only a ``failed`` step (or one the
    clock ended) is blamed on the limit ``limit_hit`` names, if any: a step may
    survive a child's OOM kill or a refused fork and still pass."""
    reason: str | None = None
    if ended_by is EndedBy.TIMEOUT:
        reason = f"killed after {job.step.timeout:g} s timeout"
    elif ended_by is EndedBy.CANCELLED:
        reason = "cancelled"
    if (failed or ended_by is not None) and ended_by is not EndedBy.CANCELLED:
        cause = limit_hit()
        if cause is not None:
            ended_by = cause[0]
            reason = cause[1] if reason is None else f"{cause[1]}; {reason}"
    return StepResult(
        exit_code=exit_code,
        signal=sig,
        duration=time.monotonic() - job.started,
        ended_by=ended_by,
        reason=reason,
        log_truncated=job.log.exceeded,
    )
