"""LocalSandbox: runs a step as a plain process tree on this machine.

It owns the process lifetime (timeout, cancel, leftovers, limits), not
isolation: the step sees the host's files and network. See docs/sandboxes.md.
"""

from __future__ import annotations

import contextlib
import functools
import signal as _signal
import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sauci._logging import get_logger
from sauci.core.logbudget import format_size
from sauci.core.models import EndedBy, Limits, Step, StepResult
from sauci.exceptions import SandboxError
from sauci.sandbox._cgroups import DEFAULT_ROOT, warm_moves
from sauci.sandbox._handover import workspace_written
from sauci.sandbox._proctree import (
    CannotEnter,
    CgroupLayout,
    StepCgroup,
    cgroup_name,
    detect_cgroups,
    sweep,
)
from sauci.sandbox._pscan import TOKEN_VARIABLE, ProcessTree
from sauci.sandbox._pump import OutputPump
from sauci.sandbox._steps import (
    Job,
    StepClock,
    StepSandbox,
    ended_result,
    out_of_memory,
    process_limit,
)

if TYPE_CHECKING:
    pass

__all__ = ["TOKEN_VARIABLE", "LocalSandbox", "sweep"]

log = get_logger(__name__)

POLL_INTERVAL = 0.05  # how often cancel and the clock are looked at, at most


@functools.cache
def _warn_cgroups_unavailable(reason: str) -> None:
    """Say once per reason (every LocalSandbox of a machine has the same one)."""
    log.warning(
        "cgroups_unavailable",
        reason=reason,
        effect="steps are tracked by process group, session and a marker variable; "
        "limits are not enforced",
    )


_LIMIT_TEXT: dict[str, Callable[[Any], str]] = {
    "memory": lambda memory: f"memory limit {format_size(memory)}",
    "pids": lambda processes: f"process limit of {processes}",
    "cpu": lambda cpu: f"cpu limit of {cpu:g} cores",
}


class LocalSandbox(StepSandbox):
    """Runs each step as a local process tree in its own session and, where
    the machine allows, its own cgroup.

    ``use_cgroups``: None detects, True requires (SandboxError when there are
    none), False never uses them. ``limits`` are the defaults for a step's
    ``limits`` fields that are None; ``default_processes`` applies when
    cgroups are in use and neither sets a process limit. ``grace`` is the time
    between SIGTERM and SIGKILL.

    Without a cgroup, one variable is added to the step's environment,
    ``SAUCI_STEP_TOKEN=<random>``, to find processes that left the session.
    """

    def __init__(
        self,
        *,
        grace: float = 5.0,
        use_cgroups: bool | None = None,
        cgroup_root: Path | str = DEFAULT_ROOT,
        cgroup_prefix: str = "sauci-",
        limits: Limits | None = None,
        default_processes: int | None = 512,
        drain_timeout: float = 1.0,
    ) -> None:
        self.grace = grace
        self.cgroup_prefix = cgroup_prefix
        self.limits = limits or Limits()
        self.default_processes = default_processes
        self.drain_timeout = drain_timeout
        self.layout: CgroupLayout | None = None
        self.cgroups_reason = "disabled (use_cgroups=False)"
        self.required = bool(use_cgroups)
        if use_cgroups is not False:
            self.layout, self.cgroups_reason = detect_cgroups(cgroup_root)
            if self.layout is None:
                if use_cgroups:
                    raise SandboxError(f"cgroups were required but {self.cgroups_reason}")
                _warn_cgroups_unavailable(self.cgroups_reason)
        self.capabilities: frozenset[str] = (
            self.layout.capabilities if self.layout is not None else frozenset()
        )

    def close(self) -> None:
        """Nothing to release: every run cleans up after itself."""

    def prepare(self) -> None:
        """Say that a step will start soon (the runner calls this before a checkout):
        on cgroup v1, a no-op thread move now keeps the step's own move from
        waiting for an RCU grace period (see :mod:`sauci.sandbox._cgroups`)."""
        layout = self.layout
        if layout is not None and layout.version == 1:
            warm_moves(next(iter(layout.bases.values())) / "tasks")

    # -- what a subclass changes (NamespaceSandbox wraps the command) -------

    kind = "local"  # named in the build log's warnings
    # A step starts from a thread of its own that ends (see StepCgroup.spawn):
    # False where the step must die with the thread that started it.
    start_on_own_thread = True

    def _command(
        self, step: Step, workspace: Path, cwd: Path, env: Mapping[str, str]
    ) -> tuple[list[str], Path]:
        """The argv to start (with ``env``) and the directory to start it in."""
        return [*step.shell, step.script()], cwd

    def _terminate(self, tree: StepCgroup | ProcessTree) -> None:
        """Ask every process of the step to end (the start of the grace period)."""
        tree.signal(_signal.SIGTERM)

    def _exit_status(self, returncode: int) -> tuple[int | None, int | None]:
        """(exit code, signal) of the main process from Popen's returncode."""
        return (None, -returncode) if returncode < 0 else (returncode, None)

    def _hand_over(self, job: Job) -> None:
        """Make the job's workspace the step's before it starts (here it already is)."""

    def _handed_back(self, job: Job) -> None:
        """The step ended. Here it ran as SauCI's own uid, so what it wrote is
        not a sandboxed step's: for a later step of the build in another
        sandbox it is as if SauCI wrote it (see :mod:`sauci.sandbox._handover`)."""
        workspace_written(job.workspace)

    # -- running -----------------------------------------------------------

    def _run(self, job: Job) -> StepResult:
        """Run the step and end every process it started."""
        self._hand_over(job)
        try:
            tree, proc = self._spawn(job)
        except (FileNotFoundError, PermissionError) as exc:
            problem = f"cannot start {exc.filename!r}: {exc.strerror or exc}"
            job.log.write(f"sauci: error: {problem}\n".encode())
            return job.result(127 if isinstance(exc, FileNotFoundError) else 126, problem)
        except (OSError, subprocess.SubprocessError) as exc:
            raise SandboxError(f"cannot start step {job.step.name!r}: {exc}") from exc
        try:
            return self._supervise(job, proc, tree)
        finally:
            # Also on an exception (KeyboardInterrupt, a failing LogWriter):
            # nothing of the step may outlive run().
            if proc.returncode is None:
                tree.kill_all()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
            tree.remove()
            self._handed_back(job)
            # The next step (this build's or the next build's) most often
            # starts within milliseconds: its move into its cgroup is fast
            # if a move was made since (cgroup v1; see prepare).
            self.prepare()

    def _spawn(self, job: Job) -> tuple[StepCgroup | ProcessTree, subprocess.Popen[bytes]]:
        """Start the step's main process in a new tree (its cgroup where there is
        one). The first step is the test of whether this thread may enter a
        cgroup: when it may not, the step starts without one, and so do the
        next ones (unless cgroups are required)."""
        limits = job.step.limits
        memory = _pick(limits.memory, self.limits.memory)
        cpu = _pick(limits.cpu, self.limits.cpu)
        processes = _pick(limits.processes, self.limits.processes)
        tree = self._new_tree(
            job.label, Limits(memory=memory, processes=processes or self.default_processes, cpu=cpu)
        )
        asked = ((memory, "memory"), (processes, "pids"), (cpu, "cpu"))
        try:
            return tree, self._start(job, tree, asked)
        except CannotEnter as exc:
            self._without_cgroups(str(exc))
        tree = ProcessTree()
        return tree, self._start(job, tree, asked)

    def _without_cgroups(self, reason: str) -> None:
        """This machine lets no step enter a cgroup after all: stop trying."""
        if self.required:
            raise SandboxError(f"cgroups were required but {reason}")
        if self.layout is not None:
            self.capabilities = self.capabilities - self.layout.capabilities
        self.layout, self.cgroups_reason = None, reason
        _warn_cgroups_unavailable(reason)

    def _start(
        self, job: Job, tree: StepCgroup | ProcessTree, asked: tuple[tuple[Any, str], ...]
    ) -> subprocess.Popen[bytes]:
        """Say in the step's log which of the ``asked`` (limit, controller) ``tree``
        cannot enforce, then start it; on an error nothing of the step is left."""
        why = "without cgroups" if isinstance(tree, ProcessTree) else "on this machine"
        for value, ctrl in asked:
            if value is not None and ctrl not in tree.controllers:
                # The build's own log says so, where the person reading it looks.
                what = _LIMIT_TEXT[ctrl](value)
                job.log.write(
                    f"sauci: warning: {what} cannot be enforced by the {self.kind} "
                    f"sandbox {why}\n".encode()
                )
        run_env = tree.env(job.env) if isinstance(tree, ProcessTree) else dict(job.env)
        argv, popen_cwd = self._command(job.step, job.workspace, job.cwd, run_env)

        def start(args: list[str], preexec: Callable[[], None] | None) -> subprocess.Popen[bytes]:
            return subprocess.Popen(
                args,
                cwd=popen_cwd,
                env=run_env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
                preexec_fn=preexec,
            )

        try:
            return tree.spawn(argv, start, env=run_env, own_thread=self.start_on_own_thread)
        except BaseException:
            tree.remove()
            raise

    def _new_tree(self, label: str, limits: Limits) -> StepCgroup | ProcessTree:
        if self.layout is not None:
            name = cgroup_name(self.cgroup_prefix, label)
            try:
                return StepCgroup.create(self.layout, name, limits)
            except OSError as exc:
                log.warning("cgroup_create_failed", cgroup=name, error=str(exc))
        return ProcessTree()

    def _supervise(
        self, job: Job, proc: subprocess.Popen[bytes], tree: StepCgroup | ProcessTree
    ) -> StepResult:
        out = OutputPump(proc, job.log, job.started)
        clock = StepClock(job, self.grace)

        def terminate() -> None:
            self._terminate(tree)

        while proc.poll() is None:
            now = time.monotonic()
            if clock.tick(now, terminate, tree.kill_all):
                continue
            wait = clock.left(now, POLL_INTERVAL)
            if out.eof and not out.watches_exit:  # stdout closed, process still running
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(wait)
            else:
                out.pump(wait)
        out.process_ended()

        # The main process has ended. End what it left behind (background
        # jobs, daemons), like GitHub Actions does at the end of a job:
        # SIGTERM, up to ``grace`` seconds, then SIGKILL. A leftover may hold
        # the pipe open, so keep reading meanwhile instead of waiting for EOF.
        if not clock.killed:
            leftovers = tree.pids()
            if leftovers:
                kill_at = clock.kill_at
                if clock.ended_by is None:
                    self._terminate(tree)
                    kill_at = time.monotonic() + self.grace
                pause = 0.002  # most leftovers die at once on SIGTERM
                while tree.pids():
                    if time.monotonic() >= kill_at or (
                        clock.ended_by is None and job.cancel.is_set()
                    ):
                        break
                    if not out.pump(pause) and out.eof:
                        time.sleep(pause)
                    pause = min(pause * 2, POLL_INTERVAL)
                tree.kill_all()
        # Every writer is gone (or escaped detection): read what is left, briefly.
        drain_until = time.monotonic() + self.drain_timeout
        while not out.eof and (left := drain_until - time.monotonic()) > 0:
            if not out.pump(min(0.1, left)) and not out.eof:
                break  # nobody writes: an escaped process holds the pipe
        exit_code, sig = self._exit_status(proc.returncode)

        def limit_hit() -> tuple[EndedBy, str] | None:
            events = tree.events()
            if tree.memory is not None and events.out_of_memory():
                return out_of_memory(tree.memory)
            if tree.processes is not None and events.pids_max_hits > 0:
                return process_limit(tree.processes)
            return None

        result = ended_result(
            job,
            exit_code,
            sig,
            failed=proc.returncode != 0,
            ended_by=clock.ended_by,
            limit_hit=limit_hit,
        )
        log.debug(
            "local_step_ended",
            step=job.step.name,
            exit_code=result.exit_code,
            signal=result.signal,
            ended_by=str(result.ended_by) if result.ended_by else None,
            seconds=round(result.duration, 3),
        )
        return result


def _pick(value: Any, default: Any) -> Any:
    return default if value is None else value
