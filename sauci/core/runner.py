"""LocalRunner: drive builds to an end on this machine.

A build moves queued -> running -> passed | failed | errored | cancelled |
skipped; each change is written to the store before anything else sees it.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import attrs

from sauci._logging import get_logger
from sauci.core.cache_store import CacheStore
from sauci.core.config import Settings
from sauci.core.events import emit
from sauci.core.executor import BuildObserver, Executor, SlotPool, build_status
from sauci.core.journal import BuildJournals, journal_dir
from sauci.core.models import Build, BuildOutcome, BuildRequest, Pipeline, Status, StepRun
from sauci.core.rerun import RERUN_STEP_PARAM, reusable_steps
from sauci.core.resources import build_maximum
from sauci.core.secrets import Secrets
from sauci.core.store_retry import RetryingStore, StoreUnavailableError
from sauci.core.undelivered import deliver_pending, note_undelivered
from sauci.exceptions import ConfigError, SauCIError, SourceError, StoreError

if TYPE_CHECKING:
    from sauci.core.ahead import Ahead
    from sauci.core.demands import SandboxCapabilities
    from sauci.typing import Sandbox, Source, Store, Workspace

__all__ = ["LocalRunner"]

log = get_logger(__name__)


class LocalRunner:
    """Runs builds on this machine with bounded step parallelism.

    Every part is handed in (``sauci.app`` chooses them): ``store`` and
    ``sandbox`` are instances, ``sources`` makes the :class:`~sauci.typing.Source`
    of a repository (a path or URL), kept for the runner's life, ``load_sandbox`` gives the sandbox a step names that is
    not in ``sandboxes`` (a server's policy, or any installed one for trusted
    use). Builds are taken from the store's queue with :meth:`run_next`, or
    run directly with :meth:`run_pipeline`.
    """

    def __init__(
        self,
        *,
        store: Store,
        sandbox: Sandbox,
        sources: Callable[[str], Source],
        load_sandbox: Callable[[str], Sandbox],
        sandboxes: Mapping[str, Sandbox] | None = None,
        allowed_sandboxes: Collection[str] | None = None,
        settings: Settings | None = None,
        secrets: Mapping[str, str] | Secrets | None = None,
        observer: BuildObserver | None = None,
        name: str | None = None,
        slots: SlotPool | None = None,
        store_retry: float | None = None,
        capabilities: SandboxCapabilities | None = None,
        pipeline_loader: PipelineLoader | None = None,
    ) -> None:
        # Reads a build's pipeline from its workspace (sauci.workflows.load_for_build
        # also reads GitHub/GitLab files); None: .sauci.yml only.
        self.pipeline_loader = pipeline_loader
        self.settings = settings or Settings()
        # Seconds to wait for a store that went away (settings.store_deadline).
        self.store_retry = self.settings.store_deadline if store_retry is None else store_retry
        self.store = store
        self.sandbox = sandbox
        # A server's policy: the sandbox names a pipeline may give (None: any).
        self.allowed_sandboxes = allowed_sandboxes
        # What those sandboxes can do: a step asking for more is a pipeline
        # problem at its key (sauci.core.demands), unless the settings say "warn".
        self.capabilities = capabilities if self.settings.unenforced_limits == "error" else None
        self.name = name or f"local-{os.getpid()}"
        # Each write of a build goes to its journal on disk first (sauci.core.journal).
        self.journals = BuildJournals(journal_dir(self.settings.data_dir))
        self._journaled = self.journals.wrap(store)
        self.executor = Executor(
            # Step records and log chunks wait out a short outage (sauci.core.store_retry).
            store=RetryingStore(self.journals.wrap(store), deadline=self.store_retry),
            sandbox=sandbox,
            sandboxes=sandboxes,
            load_sandbox=load_sandbox,
            logs_dir=self.settings.logs_dir,
            artifacts_dir=self.settings.artifacts_dir,
            jobs=self.settings.jobs,
            fail_fast=self.settings.fail_fast,
            log_limit=self.settings.log_limit,
            build_log_limit=self.settings.build_log_limit,
            secrets=secrets,
            observer=observer,
            slots=slots,
            unenforced=self.settings.unenforced_limits,
            cache_store=_cache_store(self.settings),
        )
        self.executor.artifact_limit = self.settings.artifact_limit
        self.executor.max_processes = self.settings.max_step_processes
        self._cancels: dict[int, threading.Event] = {}
        self._cancel_reasons: dict[int, str] = {}
        self._make_source = sources
        self._sources: dict[str, Source] = {}
        self._lock = threading.Lock()

    # -- control -------------------------------------------------------------

    def cancel(self, build_id: int, *, reason: str = "cancelled") -> None:
        """Stop a build this runner is running; its running steps end "cancelled"."""
        with self._lock:
            event = self._cancels.get(build_id)
            if event is not None:
                self._cancel_reasons.setdefault(build_id, reason)
        if event is not None:
            event.set()

    def cancel_all(self) -> None:
        with self._lock:
            ids = list(self._cancels)
        for build_id in ids:
            self.cancel(build_id)

    # -- running -------------------------------------------------------------

    def run_pipeline(
        self,
        pipeline: Pipeline,
        workspace: Path,
        request: BuildRequest,
        *,
        reuse: Mapping[str, StepRun] | None = None,
    ) -> BuildOutcome:
        """Record a build for ``request`` and run ``pipeline`` in ``workspace`` now."""
        self._prepare_sandbox()
        build = self.store.create_build(request, status=Status.RUNNING)
        build = self.store.update_build(build.id, started_at=time.time(), claimed_by=self.name)
        build = self._execute(build, pipeline, workspace, reuse=reuse)
        if any(step.cache is not None for step in pipeline.steps):
            from sauci.core.cache_saver import wait_for_build

            wait_for_build(build.id)  # a library call returns with its caches saved
        try:
            steps = self.store.list_steps(build.id)
        except StoreError:  # still away (the build says so): its steps are told later
            steps = []
        return BuildOutcome(build=build, steps=steps)

    def run_next(self) -> Build | None:
        """Claim the next queued build and run it from its repository; None if none."""
        build = self.store.claim_build(self.name)
        if build is None:
            return None
        return self.run_build(build)

    def run_build(self, build: Build, *, ahead: Ahead | None = None) -> Build:
        """Check out a claimed build's commit, load its pipeline, and run it.

        The source lends the workspace: a local repository a worktree slot
        kept between builds (reset, not remade), a URL a checkout of its
        cached mirror (only new objects are fetched). ``ahead``: the build's
        checkout made while it was queued (:meth:`check_out_ahead`), used
        when the build still names that commit, else handed back.
        """
        # Handed back below if anything fails.
        lease: Workspace | None = ahead.lease if ahead is not None else None
        try:
            source = self._source(build.repo)
            self._prepare_sandbox()  # its kernel wait, if any, overlaps the git calls
            rev = build.sha or build.ref or "HEAD"
            if ahead is not None and not (
                ahead.fits(build) and source.resolve(rev) == ahead.commit.sha
            ):
                stale, lease, ahead = ahead, None, None
                stale.release()  # the branch moved since: checked out again below
            if ahead is not None:
                lease, workspace, pipeline = ahead.lease, ahead.workspace, ahead.pipeline
                commit = ahead.commit
                if build.author:  # as below: the commit's sha, or all three
                    if commit.sha != build.sha:
                        build = self.store.update_build(build.id, sha=commit.sha)
                else:
                    build = self.store.update_build(
                        build.id, sha=commit.sha, author=commit.author, message=commit.message
                    )
            else:
                # A slot's clean-up starts now, beside the commit lookup.
                lease = source.reserve(self.settings.workspaces_dir)
                if build.author:
                    sha = source.resolve(rev)
                    if sha != build.sha:
                        build = self.store.update_build(build.id, sha=sha)
                else:  # one git call for the sha and the commit's author and message
                    commit = source.resolve_commit(rev)
                    sha = commit.sha
                    build = self.store.update_build(
                        build.id, sha=sha, author=commit.author, message=commit.message
                    )
                workspace = lease.reset(sha)
                pipeline = self._pipeline(workspace, build)
        except (SourceError, ConfigError) as exc:
            if lease is not None:
                lease.release()
            return self._end(build, Status.ERRORED, str(exc))
        except BaseException:
            if lease is not None:
                lease.release()
            raise
        try:
            reuse = None
            if build.reuse_from is not None:
                reuse = reusable_steps(
                    pipeline,
                    self.store.list_steps(build.reuse_from),
                    step=build.params.get(RERUN_STEP_PARAM),
                )
            return self._execute(build, pipeline, workspace, reuse=reuse)
        finally:
            # Every step has ended: the slot is tidied in the background (sauci.source.workspaces).
            lease.release(tidy=True)

    def check_out_ahead(self, build: Build) -> Ahead | None:
        """Make a workspace of a queued build's commit and read its pipeline
        there as run_build would, writing nothing (sauci.core.ahead); None when
        that fails (the claim does it again and records why)."""
        from sauci.core.ahead import Ahead  # a server's: `sauci run` has no queue

        lease: Workspace | None = None
        try:
            source = self._source(build.repo)
            lease = source.reserve(self.settings.workspaces_dir)
            commit = source.resolve_commit(build.sha or build.ref or "HEAD")
            workspace = lease.reset(commit.sha)
            who = (build.author, build.message) if build.author else (commit.author, commit.message)
            seen = attrs.evolve(build, sha=commit.sha, author=who[0], message=who[1])
            pipeline = self._pipeline(workspace, seen)
        except BaseException as exc:
            if lease is not None:
                lease.release()
            if not isinstance(exc, (SauCIError, OSError)):
                raise  # a reader's bug: the claim records it (the slot is handed back)
            log.info("checkout_ahead_skipped", build=build.id, error=str(exc))
            return None
        return Ahead(
            build=build, commit=commit, lease=lease, workspace=workspace, pipeline=pipeline
        )

    def _pipeline(self, workspace: Path, build: Build) -> Pipeline:
        return (self.pipeline_loader or _native)(
            workspace,
            build,
            max_timeout=self.settings.max_timeout,
            sandboxes=self.allowed_sandboxes,
            capabilities=self.capabilities,
            network=self.settings.network,
            max_resources=build_maximum(
                self.settings.max_build_cpus, self.settings.max_build_memory
            ),
        )

    def prepare(self) -> None:
        """Say that a build starts soon (``sauci run`` says so before it reads
        the pipeline), so that the sandbox's own preparation overlaps that."""
        self._prepare_sandbox()

    def _prepare_sandbox(self) -> None:
        """Tell the sandbox a step starts soon (LocalSandbox.prepare; others may lack it)."""
        prepare = getattr(self.sandbox, "prepare", None)
        if prepare is not None:
            prepare()

    def _source(self, repo: str) -> Source:
        """One source per repository, kept: finding a repository's root costs git calls."""
        with self._lock:
            source = self._sources.get(repo)
        if source is None:
            source = self._make_source(repo)
            with self._lock:  # two slots starting a new repository at once share the first
                source = self._sources.setdefault(repo, source)
        return source

    def _execute(
        self,
        build: Build,
        pipeline: Pipeline,
        workspace: Path,
        *,
        reuse: Mapping[str, StepRun] | None = None,
    ) -> Build:
        with self.journals.open(build):
            cancel = threading.Event()
            with self._lock:
                self._cancels[build.id] = cancel
            emit("build_started", build=build)
            try:
                steps = self.executor.execute(
                    build, pipeline, workspace, cancel=cancel, reuse=reuse
                )
            except StoreError as exc:
                log.error("build_store_failed", build=build.id, error=str(exc))
                return self._end_unavailable(build, exc)
            except SauCIError as exc:
                log.error("build_errored", build=build.id, error=str(exc))
                return self._end(build, Status.ERRORED, f"SauCI error: {exc}")
            finally:
                with self._lock:
                    self._cancels.pop(build.id, None)
                    cancel_reason = self._cancel_reasons.pop(build.id, "cancelled")
            status, reason = build_status(steps)
            if cancel.is_set() and status is not Status.ERRORED:
                status, reason = Status.CANCELLED, cancel_reason
            return self._end(build, status, reason)

    def _end_unavailable(self, build: Build, exc: StoreError) -> Build:
        """End a build whose store stayed away: noted on disk first (its data is
        delivered when the store is back, sauci.core.undelivered), then recorded
        if the store answers now."""
        reason = f"store unavailable: {exc}; the logs are on disk and are delivered when it is back"
        self.journals.end(build.id)  # what it still owes is replayed with the note
        note_undelivered(self.settings.data_dir, build, worker=self.name, reason=reason)
        deliver_pending(self.store, self.settings.data_dir)  # when the store is back already
        try:  # one try: the deadline has passed already
            final = self.store.finish_build(
                build.id, self.name, status=Status.ERRORED, reason=reason, finished_at=time.time()
            )
            return final or self.store.get_build(build.id)
        except StoreError:
            return attrs.evolve(build, status=Status.ERRORED, reason=reason)

    def _end(self, build: Build, status: Status, reason: str | None) -> Build:
        """Record the build's end; while the store is down, retry (bounded) until it is back.

        The write is a compare-and-set on this runner still owning the build:
        when it does not (a server declared its worker lost meanwhile), the
        verdict already recorded stands and this result is dropped.
        """
        if owed := self.journals.owed(build.id, self.store):  # never better than its data
            why = f"{owed} writes of its journal are not in the store"
            return self._end_unavailable(build, StoreUnavailableError(why))
        finished_at = time.time()
        deadline = time.monotonic() + self.store_retry
        delay = 0.2
        while True:
            try:
                final = self._journaled.finish_build(
                    build.id, self.name, status=status, reason=reason, finished_at=finished_at
                )
                if final is None:
                    log.warning(
                        "build_result_dropped",
                        build=build.id,
                        status=status.value,
                        why="this runner no longer owns the build",
                    )
                    return self.store.get_build(build.id)
                break
            except StoreError as exc:
                if time.monotonic() + delay > deadline:
                    raise
                log.warning(
                    "store_unavailable_retrying", build=build.id, error=str(exc), wait=delay
                )
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
        emit("build_finished", build=final)
        return final


def _cache_store(settings: Settings) -> CacheStore | None:
    """The step caches on this machine's disk (``<data>/cache/steps``); None when
    the limit is 0 (caching off)."""
    if not settings.cache_limit:
        return None
    # Under steps/: other caches may come beside it, and a repository may have any name.
    return CacheStore(settings.data_dir / "cache" / "steps", limit=settings.cache_limit)


class PipelineLoader(Protocol):
    """What reads a build's pipeline: ``(workspace, build, **policy) -> Pipeline``.

    The policy keywords are ``max_timeout``, ``sandboxes``, ``capabilities``
    and ``network`` (sauci.core.pipeline.load_pipeline's); a loader applies
    them to whatever file it reads, so a pushed file never widens them.
    """

    def __call__(self, workspace: Path, build: Build, **policy: Any) -> Pipeline: ...


def _native(workspace: Path, build: Build, **policy: Any) -> Pipeline:
    """The workspace's ``.sauci.yml``."""
    from sauci.core.pipeline import load_pipeline

    return load_pipeline(workspace, **policy)
