"""Drive one build's steps through their DAG: ready steps in parallel, bounded.

The executor owns the rules that turn sandbox results into statuses: skip a
step whose needs did not pass, retry, allow failures, fail fast, cancel. Every
state change is written to the store before it is announced to observers.
Running one step (its environment, sandbox, retries and logs) is in
:mod:`sauci.core._step_executor`; this module schedules the steps.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, wait
from pathlib import Path
from typing import TYPE_CHECKING

import attrs

from sauci._logging import get_logger
from sauci.core._step_executor import StepExecutor, step_env
from sauci.core.conditions import condition_verdict
from sauci.core.entry_workspaces import EntryWorkspaces
from sauci.core.expansion import expand_into
from sauci.core.fail_fast import FailFastGroups
from sauci.core.job_groups import BuildGroups, JobGroups
from sauci.core.logsink import LogBudget
from sauci.core.max_parallel import may_start
from sauci.core.models import (
    DEFAULT_BUILD_LOG_LIMIT,
    Build,
    EndedBy,
    Pipeline,
    Status,
    StepRun,
)
from sauci.core.observer import BuildObserver
from sauci.core.secrets import Secrets
from sauci.core.step_threads import StepThreads
from sauci.exceptions import StoreError

if TYPE_CHECKING:
    from sauci.core.cache_store import CacheStore
    from sauci.typing import Sandbox, Store

__all__ = ["BuildObserver", "Executor", "SlotPool", "build_status", "step_env"]

log = get_logger(__name__)


class SlotPool:
    """Step slots shared by every build of a server; a step takes ``weight`` of them.

    A step heavier than the whole pool takes all of it (it runs alone rather
    than never).
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = max(1, capacity)
        self._free = self.capacity
        self._lock = threading.Lock()

    def _cost(self, weight: int) -> int:
        return min(max(1, weight), self.capacity)

    def try_acquire(self, weight: int) -> bool:
        with self._lock:
            cost = self._cost(weight)
            if cost > self._free:
                return False
            self._free -= cost
            return True

    def release(self, weight: int) -> None:
        with self._lock:
            self._free = min(self.capacity, self._free + self._cost(weight))

    @property
    def in_use(self) -> int:
        with self._lock:
            return self.capacity - self._free


class _Running:
    """A step handed to the build's thread pool: its record and its cancel token."""

    __slots__ = ("cancel", "run")

    def __init__(self, run: StepRun, cancel: threading.Event) -> None:
        self.run = run
        self.cancel = cancel


class Executor(StepExecutor):
    """Runs the steps of one build; reusable across builds.

    ``log_limit`` caps each step's log; ``build_log_limit`` caps all the
    logs of one build together (every step and matrix entry): once spent,
    each step that writes again is ended with the reason "log limit".
    """

    def __init__(
        self,
        *,
        store: Store,
        sandbox: Sandbox,
        sandboxes: Mapping[str, Sandbox] | None = None,
        load_sandbox: Callable[[str], Sandbox] | None = None,
        logs_dir: Path,
        artifacts_dir: Path,
        jobs: int = 4,
        fail_fast: bool = False,
        log_limit: int | None = None,
        build_log_limit: int | None = None,
        secrets: Mapping[str, str] | Secrets | None = None,
        observer: BuildObserver | None = None,
        slots: SlotPool | None = None,
        unenforced: str = "error",
        cache_store: CacheStore | None = None,
        job_groups: JobGroups | None = None,
    ) -> None:
        self.slots = slots
        # Job-level concurrency groups across the builds this executor runs.
        self.job_groups = job_groups if job_groups is not None else JobGroups()
        self.cache_store = cache_store  # step caches and pip/uv download caches
        self.unenforced = unenforced  # "error" or "warn": a limit the sandbox cannot enforce
        self.store = store
        self.sandbox = sandbox
        self.sandboxes = dict(sandboxes or {})
        # Makes a sandbox a step names (sauci.app hands it in); None: only
        # the default and ``sandboxes`` can run, a step naming another errs.
        self.load_sandbox = load_sandbox
        self.logs_dir = logs_dir
        self.artifacts_dir = artifacts_dir
        self.jobs = max(1, jobs)
        self.fail_fast = fail_fast
        self.log_limit = log_limit
        self.build_log_limit = (
            DEFAULT_BUILD_LOG_LIMIT if build_log_limit is None else build_log_limit
        )
        # None: this process's environment, for the library and `sauci run` on
        # the user's own checkout; a server hands in its Secrets.
        self.secrets = secrets if isinstance(secrets, Secrets) else Secrets.of(secrets)
        self.observer = observer or BuildObserver()
        self.threads = StepThreads()  # kept across builds: sauci.core.step_threads

    # -- the build ---------------------------------------------------------

    def execute(
        self,
        build: Build,
        pipeline: Pipeline,
        workspace: Path,
        *,
        cancel: threading.Event | None = None,
        reuse: Mapping[str, StepRun] | None = None,
    ) -> list[StepRun]:
        """Run every step of ``pipeline`` for ``build`` in ``workspace``.

        ``reuse`` maps step names to passed results of an earlier build to
        keep instead of running them again ("rerun failed"). Returns the
        final step records; the caller decides the build's status from them.
        """
        cancel = cancel or threading.Event()
        deps = pipeline.dependencies()
        steps = {s.name: s for s in pipeline.steps}
        runs: dict[str, StepRun] = {}
        for position, step in enumerate(pipeline.steps):
            runs[step.name] = self.store.save_step(
                StepRun(
                    build_id=build.id,
                    name=step.name,
                    position=position,
                    allow_failure=step.allow_failure,
                    needs=deps[step.name],
                    log_path=str(self.log_path(build, step.name)),
                )
            )
        for name, earlier in (reuse or {}).items():
            # Passed results ("rerun failed"), or failed ones too ("rerun one step").
            if name in runs and earlier.status in (Status.PASSED, Status.FAILED):
                kept = f": {earlier.reason}" if earlier.reason else ""
                runs[name] = self._finish(
                    build,
                    runs[name],
                    status=earlier.status,
                    reason=f"reused from build {earlier.build_id}{kept}",
                    exit_code=earlier.exit_code,
                    started_at=earlier.started_at,
                    finished_at=earlier.finished_at,
                    attempt=earlier.attempt,
                )
        for name, step in steps.items():
            if runs[name].status.done:
                continue
            if not step.when.matches(branch=build.branch or None, event=build.event):
                runs[name] = self._finish(
                    build,
                    runs[name],
                    status=Status.SKIPPED,
                    reason=f"skipped: 'when' does not match branch {build.branch!r} / event {build.event!r}",
                )

        # Each step runs on a thread of the build's pool; its future gives the
        # final record (or the exception that escaped the step).
        running: dict[str, _Running] = {}
        futures: dict[Future[StepRun], str] = {}
        started: set[str] = set()
        stop_reason: str | None = None
        budget = LogBudget(self.build_log_limit)  # this build's, shared by its steps
        # Each matrix entry runs in its own copy of the workspace (deleted at the end).
        entries = EntryWorkspaces(workspace, build.id, ended=self._build_ended)
        groups = FailFastGroups()  # a workflow job's matrix entries stop together
        held = BuildGroups(self.job_groups, build.id, build.repo)  # job concurrency
        try:
            while True:
                if cancel.is_set() and stop_reason is None:
                    stop_reason = "cancelled"
                    for r in running.values():
                        r.cancel.set()
                # Decide every step whose needs are settled.
                progressed = True
                while progressed:
                    progressed = False
                    for name, run in list(runs.items()):  # an expansion adds to runs
                        if run.status is not Status.QUEUED or name in started:
                            continue
                        blockers = [d for d in deps[name] if not runs[d].status.done]
                        if blockers:
                            continue
                        bad = [d for d in deps[name] if not _satisfies(runs[d])]
                        verdict = None
                        group_stop = groups.stopped(steps[name])
                        if group_stop is not None and stop_reason is None:
                            verdict = (Status.SKIPPED, group_stop)
                        elif steps[name].condition is not None and stop_reason is None:
                            verdict = condition_verdict(
                                steps[name], deps[name], runs, workspace=workspace
                            )
                            bad = []  # the condition decides, whatever its needs did
                        if stop_reason is not None:
                            status = (
                                Status.CANCELLED if stop_reason == "cancelled" else Status.SKIPPED
                            )
                            runs[name] = self._finish(build, run, status=status, reason=stop_reason)
                            progressed = True
                        elif verdict is not None:
                            runs[name] = self._finish(
                                build, run, status=verdict[0], reason=verdict[1]
                            )
                            progressed = True
                        elif not bad and steps[name].expansion is not None:
                            runs[name] = expand_into(self, build, run, steps, deps, runs, workspace)
                            # Added steps are in the pipeline steps see (artifacts, masking).
                            pipeline = attrs.evolve(pipeline, steps=list(steps.values()))
                            progressed = True
                        elif not bad and not may_start(steps[name], (steps[n] for n in running)):
                            pass  # its group's max_parallel steps are running: it waits
                        elif bad:
                            runs[name] = self._finish(
                                build,
                                run,
                                status=Status.SKIPPED,
                                reason=f"skipped: needs {bad[0]!r}, which {runs[bad[0]].status.value}",
                            )
                            progressed = True
                        elif (claim := held.check(steps[name])) is not None:
                            if claim.replaced is not None:
                                runs[name] = self._finish(
                                    build, run, status=Status.CANCELLED, reason=claim.replaced
                                )
                                progressed = True
                            elif claim.waiting != run.reason:  # the page says why it waits
                                runs[name] = self.store.save_step(
                                    attrs.evolve(run, reason=claim.waiting)
                                )
                        elif len(running) < self.jobs and (
                            self.slots is None or self.slots.try_acquire(steps[name].weight)
                        ):
                            token = held.token(name)
                            if steps[name].concurrency is not None:
                                run = attrs.evolve(run, reason=None)  # no longer waiting
                            running[name] = _Running(run, token)
                            started.add(name)
                            future = self.threads.submit(
                                f"sauci-b{build.id}-{name}",
                                self._run_step,
                                build,
                                pipeline,
                                steps[name],
                                run,
                                workspace,
                                token,
                                budget,
                                entries,
                            )
                            futures[future] = name
                if not running:
                    if all(r.status is not Status.QUEUED for r in runs.values()):
                        break
                    cancel.wait(0.05)  # every slot is held by other builds: wait for one
                    continue
                # A timeout, so that a cancel is seen while every step runs on.
                done, _ = wait(futures, timeout=0.1, return_when=FIRST_COMPLETED)
                for future in done:
                    name = futures.pop(future)
                    outcome: StepRun | BaseException | None = future.exception()
                    if outcome is None:
                        outcome = future.result()
                    entry = running.pop(name)
                    if self.slots is not None:
                        self.slots.release(steps[name].weight)
                    if isinstance(outcome, StoreError):
                        # The store is gone: nothing more can be recorded. End the
                        # other steps; the runner records the build when it is back.
                        for r in running.values():
                            r.cancel.set()
                        raise outcome
                    if isinstance(outcome, BaseException):  # a bug: this step errors, not the build
                        log.error("step_crashed", build=build.id, step=name, exc_info=outcome)
                        final = self._finish(
                            build,
                            entry.run,
                            status=Status.ERRORED,
                            reason=f"SauCI failed while running the step: {outcome}",
                        )
                    else:
                        final = outcome
                    why = held.ended(final.name)
                    if why is not None and final.status is Status.CANCELLED:
                        final = self.store.save_step(attrs.evolve(final, reason=why))
                    runs[final.name] = final
                    if groups.ended(steps[final.name], final) is not None:
                        for other, r in running.items():
                            if steps[other].fail_fast_group == steps[final.name].fail_fast_group:
                                r.cancel.set()
                    if (
                        self.fail_fast
                        and stop_reason is None
                        and final.status in (Status.FAILED, Status.ERRORED)
                        and not final.allow_failure
                    ):
                        stop_reason = (
                            f"skipped: fail-fast after {final.name!r} {final.status.value}"
                        )
                        for r in running.values():
                            r.cancel.set()
        except BaseException:
            for r in running.values():
                r.cancel.set()
            raise
        finally:
            wait(futures)  # no step of the build runs on after it
            held.close()
            entries.close()
            self._build_ended(workspace)
            if any(s.cache is not None for s in pipeline.steps):  # no cache, nothing after
                from sauci.core.cache_saver import build_ended

                build_ended(build.id)  # what its caches do after it (spare copies)
        return [runs[s.name] for s in pipeline.steps]

    def _build_ended(self, workspace: Path) -> None:
        """Tell the sandboxes that keep per-build state (the namespace sandbox's
        HOME and /tmp) that this build is over; an optional hook, not in the
        Sandbox protocol."""
        for sandbox in {id(s): s for s in (self.sandbox, *self.sandboxes.values())}.values():
            ended = getattr(sandbox, "build_ended", None)
            if callable(ended):
                try:
                    ended(workspace)
                except OSError as exc:
                    log.warning(
                        "sandbox_build_end_failed", workspace=str(workspace), error=str(exc)
                    )


def _satisfies(run: StepRun) -> bool:
    """Whether a finished step lets the steps that need it run."""
    return run.status is Status.PASSED or (run.status is Status.FAILED and run.allow_failure)


def build_status(steps: list[StepRun]) -> tuple[Status, str | None]:
    """The build's status and reason from its steps' final records."""
    # A fail-fast stop cancels the other steps, but the build still failed.
    for status in (Status.ERRORED, Status.FAILED, Status.CANCELLED):
        hit = [
            s
            for s in steps
            if s.status is status and not (status is Status.FAILED and s.allow_failure)
        ]
        if hit:
            # A step ended by the build's log limit speaks for the build: the
            # others may have failed only because the output was cut.
            first = next((s for s in hit if s.ended_by is EndedBy.LOG_LIMIT), hit[0])
            return status, f"step {first.name!r} {status.value}: {first.reason or ''}".rstrip(": ")
    if steps and all(s.status is Status.SKIPPED for s in steps):
        return Status.SKIPPED, "every step was skipped"
    return Status.PASSED, None
