"""Running one step of a build: its environment, its sandbox, its retries and logs.

:class:`StepExecutor` is the half of :class:`~sauci.core.executor.Executor`
that runs a step and records how it ended (the store first, then observers
and events); the executor's own module schedules the steps through the DAG.
"""

from __future__ import annotations

import functools
import os
import signal as _signal
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from sauci.core.cache_store import cache_env
from sauci.core.cache_tree import LINK_CAPABILITY
from sauci.core.capabilities import check_capabilities, within_process_maximum
from sauci.core.events import emit
from sauci.core.logsink import LogBudget, LogSink
from sauci.core.models import (
    DEFAULT_LOG_LIMIT,
    Build,
    EndedBy,
    Pipeline,
    Status,
    Step,
    StepResult,
    StepRun,
)
from sauci.core.paths import log_path, safe_name
from sauci.core.secrets import Secrets
from sauci.core.step_outputs import collect_outputs
from sauci.core.store_retry import StoreUnavailableError
from sauci.exceptions import NotFoundError, SandboxError

if TYPE_CHECKING:
    import threading
    from collections.abc import Callable, Mapping

    from sauci.core._step_cache import CacheState
    from sauci.core.cache_store import CacheStore
    from sauci.core.entry_workspaces import EntryWorkspaces
    from sauci.core.observer import BuildObserver
    from sauci.typing import LogWriter, Sandbox, Store

__all__ = ["StepExecutor", "step_env"]

# Host variables a step may see; nothing else of SauCI's environment (tokens,
# database URLs) reaches a step. Secrets come from `secrets`, named by the step.
_PASSED_THROUGH = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "TZ", "TMPDIR", "TERM")


def step_env(
    build: Build,
    pipeline: Pipeline,
    step: Step,
    workspace: Path,
    *,
    secrets: Mapping[str, str],
    host: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The exact environment a step runs with.

    Lowest first: a few host variables, SauCI's CI variables, the pipeline's
    env, the step's env, then the secrets the step names.
    """
    host = os.environ if host is None else host
    env = {k: host[k] for k in _PASSED_THROUGH if k in host}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    env.update(
        CI="true",
        SAUCI="true",
        SAUCI_BUILD_ID=str(build.id),
        SAUCI_REPO=build.repo,
        SAUCI_REF=build.ref,
        SAUCI_BRANCH=build.branch,
        SAUCI_SHA=build.sha,
        SAUCI_EVENT=build.event,
        SAUCI_STEP=step.name,
        SAUCI_WORKSPACE=str(workspace),
    )
    for key, value in build.params.items():
        # A pull request's SAUCI_PR_NUMBER, _BASE, _HEAD, ... (sauci.core.pull_requests) as is.
        env[key if key.startswith("SAUCI_PR_") else f"SAUCI_PARAM_{key.upper()}"] = value
    env.update(pipeline.env)
    env.update(step.env)
    for name in step.secrets:
        if name in secrets:
            env[name] = secrets[name]
    return env


def _describe(result: StepResult) -> tuple[Status, str | None]:
    if result.ended_by is EndedBy.CANCELLED:
        return Status.CANCELLED, result.reason or "cancelled"
    if result.ended_by is not None:
        return Status.FAILED, result.reason or str(result.ended_by)
    if result.exit_code == 0:
        return Status.PASSED, result.reason
    if result.signal is not None:
        try:
            signame = _signal.Signals(result.signal).name
        except ValueError:
            signame = f"signal {result.signal}"
        return Status.FAILED, f"killed by {signame}"
    # A sandbox's note on a failure (the network was off) follows the code.
    return Status.FAILED, "; ".join(
        r for r in (f"exit code {result.exit_code}", result.reason) if r
    )


def _attempt(
    sandbox: Sandbox,
    step: Step,
    workspace: Path,
    writer: LogWriter,
    env: Mapping[str, str],
    cancel: threading.Event,
    label: str,
    attempt: int,
) -> tuple[StepResult | None, str | None]:
    """One run of ``step`` and its ``after_run``: (its result, None when it
    is not tried again, else why it is). A SandboxError is raised unless the
    step retries those (``retry_when``)."""
    from sauci.core.step_retry import retry_sandbox_error, should_retry

    try:
        result = sandbox.run(step, workspace, writer, env=env, cancel=cancel, label=label)
    except SandboxError as exc:
        if cancel.is_set() or not retry_sandbox_error(step, attempt):
            raise
        return None, f"the sandbox failed: {exc}"
    if step.after_run:
        from sauci.core.after_run import run_after

        run_after(sandbox, step, workspace, writer, env, result, label)
    if cancel.is_set() or not should_retry(step, result, attempt):
        return result, None
    return result, _describe(result)[1]


def _writer(sink: LogSink) -> Callable[[str], None]:
    return lambda text: sink.write(text.encode())


class StepExecutor:
    """Runs one step in its sandbox and records its end; Executor sets the attributes."""

    store: Store
    sandbox: Sandbox
    sandboxes: dict[str, Sandbox]
    load_sandbox: Callable[[str], Sandbox] | None
    logs_dir: Path
    artifacts_dir: Path
    log_limit: int | None
    artifact_limit: int | None = None  # a step's artifacts together (None: the default)
    max_processes: int | None = None  # the most a step's `limits: processes` may say
    secrets: Secrets
    observer: BuildObserver
    unenforced: str
    cache_store: CacheStore | None = None  # None: no step caches, no pip/uv cache

    def log_path(self, build: Build, step: str) -> Path:
        """``<logs>/<repo>/<build>/<step>.log``."""
        return log_path(self.logs_dir, build.repo, build.id, step, uuid=build.uuid)

    def _reused_uuid(self, build: Build) -> str:
        """The uuid of the build a rerun reuses ("" when none or it is gone)."""
        if build.reuse_from is None:
            return ""
        try:
            return self.store.get_build(build.reuse_from).uuid
        except NotFoundError:
            return ""

    def _sandbox_for(self, step: Step) -> Sandbox:
        """The step's sandbox: the default, one handed in, or one the loader allows."""
        if step.sandbox is None:
            return self.sandbox
        try:
            return self.sandboxes[step.sandbox]
        except KeyError:
            pass
        if self.load_sandbox is None:
            raise SandboxError(
                f"step {step.name!r} names sandbox {step.sandbox!r}, "
                "but this runner was given no way to load one"
            )
        # sauci.app hands the loader in: any installed sandbox for trusted use
        # (sauci run, the library), a server's policy otherwise (SandboxError
        # when it refuses).
        sandbox = self.load_sandbox(step.sandbox)
        self.sandboxes[step.sandbox] = sandbox
        return sandbox

    def _finish(self, build: Build, run: StepRun, **changes: object) -> StepRun:
        changes.setdefault("finished_at", time.time())
        final = self.store.save_step(attrs.evolve(run, **changes))  # type: ignore[arg-type]
        self.observer.step_finished(build, final)
        emit("step_finished", build=build, step=final)
        return final

    def _run_step(
        self,
        build: Build,
        pipeline: Pipeline,
        step: Step,
        run: StepRun,
        workspace: Path,
        cancel: threading.Event,
        budget: LogBudget | None = None,
        entries: EntryWorkspaces | None = None,
    ) -> StepRun:
        """Run ``step`` (with its retries) and record how it ended.

        ``budget`` is the build's log budget, shared by its steps: a step
        still writing when it runs out is ended, "failed" with the reason
        "log limit: ...". ``entries`` makes a matrix entry's own workspace
        (:mod:`sauci.core.entry_workspaces`); its reports are collected there.
        """
        run = self.store.save_step(
            attrs.evolve(run, status=Status.RUNNING, started_at=time.time(), attempt=1)
        )
        self.observer.step_started(build, run)
        emit("step_started", build=build, step=run)
        granted = self.secrets.for_repo(build.repo)
        # Every secret any step of the build is given is masked in every
        # step's log: one step can leave a value in the workspace for the next.
        named = {name for s in pipeline.steps for name in s.secrets}
        masked = [value for name, value in granted.items() if name in named]

        def budget_spent() -> None:
            # The build's log budget ran out while this step was writing: end
            # it through its cancel token, which every sandbox honours. (A
            # step over its own limit runs on; its output is dropped.)
            if sink.budget_spent:
                cancel.set()

        sink = LogSink(
            Path(run.log_path or self.log_path(build, step.name)),
            store=self.store,
            build_id=build.id,
            step=step.name,
            secrets=masked,
            limit=DEFAULT_LOG_LIMIT if self.log_limit is None else self.log_limit,
            # Observers (the terminal, metrics) are shown what the sink
            # writes: masked and capped, never the raw bytes.
            on_data=functools.partial(self.observer.step_output, build, step.name),
            budget=budget,
            on_exceeded=budget_spent,
            deadline=getattr(self.store, "deadline", 0.0),
        )
        result: StepResult | None = None
        failure: SandboxError | None = None
        cached: CacheState | None = None
        try:
            writer: LogWriter = sink
            if (step.matrix or step.own_workspace) and entries is not None:
                workspace = entries.make(step.name)
            sandbox = self._sandbox_for(step)
            if step.artifacts_from or step.download_artifacts:
                from sauci.core.artifact_inputs import give_artifacts

                earlier = self._reused_uuid(build)
                try:
                    give_artifacts(
                        self.artifacts_dir, build, pipeline, step, workspace, earlier_uuid=earlier
                    )
                finally:  # what SauCI wrote is handed to the step's uid again
                    _hook(sandbox, "workspace_written", workspace)
            env = step_env(build, pipeline, step, workspace, secrets=granted)
            cache_env(env, self.cache_store, build)
            unenforced = check_capabilities(step, sandbox)
            if unenforced and self.unenforced == "warn":
                for problem in unenforced:  # said where the person reading the build looks
                    sink.write(f"sauci: warning: {problem}; running without it\n".encode())
            elif unenforced:
                raise SandboxError("; ".join(unenforced))
            step, lowered = within_process_maximum(step, self.max_processes)
            if lowered:
                sink.write(f"sauci: {lowered}\n".encode())
            label = f"b{build.id}-{safe_name(step.name)}"
            home = _hook(sandbox, "build_home", workspace) if step.cache is not None else None
            if step.cache is not None and self.cache_store is not None:
                # The step cache's machinery, for a step that declares one alone.
                from sauci.core._step_cache import restore_cache, save_cache, skip_run

                link = LINK_CAPABILITY in getattr(sandbox, "capabilities", ())
                try:
                    cached = restore_cache(
                        self.cache_store, build, step, workspace, env, _writer(sink), home, link
                    )
                finally:  # into the workspace and HOME: handed to the step's uid again
                    _hook(sandbox, "workspace_written", workspace)
                hidden = _hidden(sandbox, workspace)
                cached = skip_run(cached, step, workspace, env, _writer(sink), home, hidden)
            attempt = 1
            while cached is None or not cached.skipped:
                result, why = _attempt(
                    sandbox, step, workspace, writer, env, cancel, label, attempt
                )
                if why is None:
                    break
                attempt += 1
                sink.write(
                    f"\nsauci: {why}; retrying (attempt {attempt} of {step.retries + 1})\n".encode()
                )
                run = self.store.save_step(attrs.evolve(run, attempt=attempt))
            if result is None:  # skipped on a cache hit: passed, nothing ran
                result = StepResult(exit_code=0)
            if cached is not None and self.cache_store is not None and result.ok:
                link = LINK_CAPABILITY in getattr(sandbox, "capabilities", ())
                owner = getattr(sandbox, "host_uid", None)  # the step's uid, where not SauCI's
                cached = save_cache(
                    self.cache_store,
                    cached,
                    build,
                    step,
                    workspace,
                    env,
                    _writer(sink),
                    home,
                    link,
                    owner,
                )
        except SandboxError as exc:
            failure = exc
            sink.write(f"\nsauci: the sandbox failed: {exc}\n".encode())
        finally:
            sink.close()
        if sink.undelivered:  # never "passed" with part of its log missing
            raise StoreUnavailableError(
                f"{sink.undelivered} bytes of the log of step {step.name!r} are only on "
                f"disk ({sink.path}): {sink.store_error}"
            )
        if failure is not None or result is None:
            return self._finish(
                build,
                run,
                status=Status.ERRORED,
                reason=f"sandbox error: {failure}",
                log_bytes=sink.bytes_written,
            )
        if sink.budget_spent and result.ended_by in (None, EndedBy.CANCELLED):
            assert budget is not None
            why = f"log limit: {budget.reason} (all steps together); this step was ended"
            result = attrs.evolve(result, ended_by=EndedBy.LOG_LIMIT, reason=why)
        status, reason = _describe(result)
        if (result.log_truncated or sink.exceeded) and result.ended_by is not EndedBy.LOG_LIMIT:
            reason = "; ".join(r for r in (reason, sink.reason) if r)
        if cached is not None and cached.note:
            reason = "; ".join(r for r in (reason, cached.note) if r)  # shown on the page
        if status is Status.PASSED or status is Status.FAILED:
            note = collect_outputs(
                self.store,
                self.artifacts_dir,
                build,
                step,
                workspace,
                secrets=masked,
                artifact_limit=self.artifact_limit,
            )
            reason = "; ".join(r for r in (reason, note) if r) or None
        if (step.matrix or step.own_workspace) and entries is not None:
            entries.release(workspace)  # collected: free the disk while others run
        return self._finish(
            build,
            run,
            status=status,
            reason=reason,
            ended_by=result.ended_by,
            exit_code=result.exit_code,
            signal=result.signal,
            log_bytes=sink.bytes_written,
        )


def _hidden(sandbox: Sandbox, workspace: Path) -> tuple[str, ...]:
    """The workspace, then the host paths the sandbox hides from a step (the
    namespace sandbox's ``hide`` and the other workspaces beside this one);
    none for a sandbox without ``hide``. An optional attribute, as :func:`_hook`'s."""
    hide = getattr(sandbox, "hide", None)
    if hide is None:
        return (str(workspace),)
    return (str(workspace), str(workspace.parent), *map(str, hide))


def _hook(sandbox: Sandbox, name: str, workspace: Path) -> Any:
    """A sandbox's optional hook, not in the Sandbox protocol (None without it):
    ``build_home``, the build's own HOME on the host (``~/`` cache paths live
    there); ``workspace_written``, told that SauCI wrote into the workspace or
    that HOME, so that the next step's hand-over to its uid walks them again."""
    hook = getattr(sandbox, name, None)
    return hook(workspace) if callable(hook) else None
