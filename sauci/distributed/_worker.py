"""The worker's half: claim a build by id, run it here, keep its heartbeat.

One :class:`WorkerRuntime` per ``sauci worker`` process. Celery calls
:meth:`WorkerRuntime.run` on one of its threads (one per slot) for each
message; the runtime claims the build in the store (a failed claim means the
message was a duplicate or came too late, and it is dropped), runs it with the
LocalRunner under the worker's name, and meanwhile keeps a per-build heartbeat
and watches for cancel requests. At a cold shutdown it hands its builds back:
their steps are ended here, no result is written, and the server hands them
on as lost, with its attempts policy.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import socket
import threading
import time
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any, cast

from sauci._logging import get_logger
from sauci.core.config import Settings
from sauci.core.events import emit
from sauci.core.models import Status, Worker
from sauci.core.paths import secure_data_dir
from sauci.core.resources import Resources, machine_capacity
from sauci.core.runner import LocalRunner
from sauci.core.undelivered import adopt_running, deliver_pending, note_running
from sauci.distributed._app import NOT_TAKEN
from sauci.distributed._runner import WAITING
from sauci.exceptions import ConfigError, SauCIError
from sauci.source.workspaces import wait_for_tidying
from sauci.typing import Store

__all__ = ["WorkerRuntime", "worker_capacity", "worker_cgroup_prefix"]

log = get_logger(__name__)


class _RunnerStore:
    """The store as this worker's runner sees it: the result of a build handed back
    at a cold shutdown is not written (the server decides what becomes of it)."""

    def __init__(self, store: Store, handed_back: set[int]) -> None:
        self._store = store
        self._handed_back = handed_back

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def finish_build(self, build_id: int, worker: str, **fields: Any) -> Any:
        if build_id in self._handed_back:
            log.info("build_result_not_recorded", build=build_id, why="handed back")
            return None
        return self._store.finish_build(build_id, worker, **fields)


def worker_capacity(settings: Settings) -> Resources:
    """What this worker offers builds' declared costs: ``--cpus``/``--memory``,
    else this machine's (within its cgroup limits)."""
    machine = machine_capacity()
    return Resources(
        cpus=settings.worker_cpus or machine.cpus, memory=settings.worker_memory or machine.memory
    )


def worker_cgroup_prefix(name: str) -> str:
    """Step cgroups of worker ``name``: the same across its restarts, unlike anyone else's."""
    return f"sauci-wk{hashlib.sha256(name.encode()).hexdigest()[:8]}-"


class WorkerRuntime:
    """Everything a worker process keeps: its runner, its record, its heartbeats."""

    def __init__(
        self,
        *,
        store: Store,
        settings: Settings,
        runner: Callable[[Store], LocalRunner],
        sweep: Callable[[str], Collection[object]],
        name: str | None = None,
        traversable: bool = False,
    ) -> None:
        """``runner`` makes the worker's runner on the store it is handed (this
        worker's view of ``store``); ``sweep`` ends what steps under a cgroup
        prefix left running; ``traversable``: whether the data dir must let
        the sandbox's uid pass through. ``sauci.app.worker.build_worker`` makes them."""
        self.store = store
        self.settings = settings
        self.host = socket.gethostname()
        self.name = name or settings.worker_name or self.host
        self.cgroup_prefix = worker_cgroup_prefix(self.name)
        self.traversable = traversable
        self._sweep = sweep
        self._handed_back: set[int] = set()  # builds given up at a cold shutdown
        self._runner_store = cast(Store, _RunnerStore(store, self._handed_back))
        self.runner = runner(self._runner_store)
        self.started_at = time.time()
        self.capacity = worker_capacity(settings)
        self.state = "online"
        self._running: dict[int, threading.Event] = {}  # build id -> stop its watcher
        self._idle_since = time.monotonic()  # for --idle-exit
        self._lock = threading.RLock()  # also taken in signal handlers, which can nest
        self._stop = threading.Event()
        self._wake = threading.Event()  # write the record now: a slot was taken or freed
        self._beat: threading.Thread | None = None
        self.last_beat: float | None = None
        self._lock_file: Any = None
        self._clash_said = False
        # Tells the servers a build ended here (an Announcer, set by run_worker):
        # they place the next one at once. Called as ``announce(build_id, wait=...)``.
        self.announce: Callable[..., None] | None = None
        # Called once a slot here claimed its next build (Announcer.slot_taken):
        # what the announcer holds back then goes.
        self.claimed: Callable[[], None] | None = None
        # Cancel requests are looked for more often than heartbeats are written.
        self.cancel_poll = min(1.0, settings.heartbeat_interval)

    # -- life cycle --------------------------------------------------------------

    def start(self) -> None:
        """End what a previous life of this worker left running; record this one."""
        from sauci.core.paths import safe_name

        # Two workers under one name would share a record and sweep each
        # other's steps: refuse the second on this machine at once.
        secure_data_dir(
            self.settings.data_dir,
            traversable=self.traversable,
        )
        self._lock_file = (self.settings.data_dir / f"worker-{safe_name(self.name)}.lock").open("w")
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            self._lock_file.close()
            raise ConfigError(
                f"another sauci worker named {self.name!r} is running on "
                f"{self.settings.data_dir}; give each worker its own --name"
            ) from exc
        clash = self._name_taken_elsewhere()
        if clash is not None:
            self._lock_file.close()
            self._lock_file = None
            raise ConfigError(
                f"a sauci worker named {self.name!r} is running on host {clash.host!r} "
                f"(its last heartbeat {time.time() - clash.heartbeat_at:.0f} s ago); "
                "give each worker its own --name"
            )
        swept = self._sweep(self.cgroup_prefix)
        if swept:
            log.warning("leftover_steps_ended", worker=self.name, cgroups=len(swept))
        # Builds a killed life was running: their log bytes on this disk are
        # delivered with the heartbeats (deliver_pending).
        if adopted := adopt_running(self.settings.data_dir):
            log.warning("lost_builds_adopted", worker=self.name, builds=adopted)
        self.heartbeat()
        self._beat = threading.Thread(target=self._beat_loop, name="sauci-worker-beat", daemon=True)
        self._beat.start()
        log.info("worker_started", worker=self.name, labels=list(self.settings.labels))

    def _name_taken_elsewhere(self) -> Worker | None:
        """The live record of another host's worker under this name, if any.

        A record from this host is this worker's own earlier life (the lock
        file above rules out a twin here); one from another host that went
        offline or fell silent for ``lost_timeout`` is a worker that is gone.
        """
        now = time.time()
        for worker in self.store.list_workers():
            if worker.name != self.name or worker.host == self.host:
                continue
            if worker.state_at(now, stale_after=self.settings.lost_timeout) in (
                "online",
                "stopping",
            ):
                return worker
        return None

    def _say_if_name_clashes(self) -> None:
        """Log once when another host's worker took this name since the last
        heartbeat (both started at once, or one was started with a copied
        configuration): the two overwrite each other's record."""
        if self._clash_said:
            return
        clash = self._name_taken_elsewhere()
        if clash is not None:
            self._clash_said = True
            log.error(
                "worker_name_clash",
                worker=self.name,
                other_host=clash.host,
                effect="both workers share one record; give each its own --name",
            )

    def stopping(self) -> None:
        """Warm shutdown began: take no new build (the server sees "stopping")."""
        self.state = "stopping"
        with contextlib.suppress(SauCIError):
            self.heartbeat()

    def hand_back(self) -> list[int]:
        """Cold shutdown: end the steps of every running build here and record no
        result; the builds stay "running" under this name until the server hands
        them on as lost (as after ``kill -9``, without leaving steps behind)."""
        with self._lock:
            self.state = "offline"
            ids = sorted(set(self._running) - self._handed_back)
            self._handed_back.update(ids)
        if ids:
            # The watchers repeat the cancel: a build still checking out has no
            # steps to stop yet.
            for build_id in ids:
                self.runner.cancel(build_id, reason=f"worker {self.name} stopped")
            log.warning("builds_handed_back", worker=self.name, builds=ids)
        with contextlib.suppress(SauCIError):
            self.heartbeat()
        return ids

    def stop(self) -> None:
        """Forget this worker's record; keep it "offline" while builds are still recorded
        as running here, so that the server hands them on."""
        with self._lock:
            running = list(self._running)
        if running:  # the Celery worker ended without waiting for them
            self.hand_back()
        self._stop.set()
        self._wake.set()
        if self._beat is not None:
            self._beat.join(5)
        try:
            if self._handed_back:
                self.state = "offline"
                self.heartbeat()
            else:
                self.store.delete_worker(self.name)
        except SauCIError as exc:
            log.warning("worker_record_not_updated", worker=self.name, error=str(exc))
        wait_for_tidying(10.0)  # the workspaces of ended builds, deleted in the background
        if self._lock_file is not None:
            self._lock_file.close()
        log.info("worker_stopped", worker=self.name, running=running)

    def idle_for(self) -> float:
        """Seconds since this worker last had a build running (0 while one runs)."""
        with self._lock:
            if self._running:
                return 0.0
            return time.monotonic() - self._idle_since

    def record(self) -> Worker:
        with self._lock:
            running = tuple(sorted(self._running))
        return Worker(
            name=self.name,
            host=self.host,
            labels=self.settings.labels,
            slots=self.settings.slots,
            running=running,  # type: ignore[arg-type]  # attrs converter=tuple
            started_at=self.started_at,
            heartbeat_at=time.time(),
            state=self.state,
            cpus=self.capacity.cpus,
            memory=self.capacity.memory,
        )

    def heartbeat(self) -> Worker:
        worker = self.store.save_worker(self.record())
        self.last_beat = worker.heartbeat_at  # written: what the worker's /readyz reads
        emit("worker_heartbeat", worker=worker)
        return worker

    def _beat_loop(self) -> None:
        while True:
            self._wake.wait(self.settings.heartbeat_interval)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self._say_if_name_clashes()
                self.heartbeat()
            except SauCIError as exc:
                log.warning("worker_heartbeat_failed", worker=self.name, error=str(exc))
                continue
            # The store answers: what this worker's builds owe it since an outage.
            deliver_pending(self.store, self.settings.data_dir)

    # -- one build ---------------------------------------------------------------

    def run(self, build_id: int) -> str:
        """Claim and run build ``build_id``; returns what happened, for Celery's log."""
        if self.state != "online":
            # Celery stops consuming on warm shutdown; a message it still hands
            # over is left queued in the store, and goes back to the broker.
            return NOT_TAKEN
        # A step starts in a few milliseconds: the sandbox's own preparation
        # (on cgroup v1, a thread move that waits out an RCU grace period and
        # meanwhile holds up every cgroup's mkdir) begins before the claim, not
        # after it (LocalRunner.run_build asks again, which then costs nothing).
        self.runner.prepare()
        build = self.store.claim_build(self.name, build_id=build_id)
        if build is None:
            log.info("build_not_claimed", build=build_id, worker=self.name)
            if self.announce is not None:
                # A build sent ahead here and also elsewhere (sauci.distributed._ahead),
                # taken there first: this slot is free, and the server may fill it now.
                self.announce(build_id)
            return "dropped: not queued any more"
        if self.claimed is not None:
            self.claimed()
        if build.reason and build.reason.startswith(WAITING):
            # Sent before its worker went away, taken from the queue when one
            # came back: it no longer waits (the server clears it only on a send).
            with contextlib.suppress(SauCIError):
                build = self.store.update_build(build.id, reason=None)
        try:
            running: Path | None = note_running(self.settings.data_dir, build, worker=self.name)
        except OSError as exc:  # a full disk: the build runs, unnoted
            log.warning("running_note_failed", build=build.id, error=str(exc))
            running = None
        stop = threading.Event()
        with self._lock:
            self._running[build.id] = stop
            if self.state == "offline":  # claimed just as a cold shutdown began
                self._handed_back.add(build.id)
        watcher = threading.Thread(
            target=self._watch, args=(build.id, stop), name=f"sauci-watch-{build.id}", daemon=True
        )
        watcher.start()
        self._wake.set()  # the server's view of this worker's slots, soon (off this thread)
        try:
            final = self.runner.run_build(build)
            return final.status.value
        except Exception as exc:  # record, never leave the build "running"
            log.exception("build_crashed", build=build.id)
            with contextlib.suppress(SauCIError):
                self._runner_store.finish_build(
                    build.id,
                    self.name,
                    status=Status.ERRORED,
                    reason=f"SauCI failed on worker {self.name}: {exc}",
                    finished_at=time.time(),
                )
            return "errored"
        finally:
            if self.announce is not None:
                # The end is recorded: the server may send the next build now,
                # while this thread lets go (Celery takes it once this task returns).
                # Only a worker whose slots were all taken can have a build sent
                # ahead waiting for this slot (sauci.distributed._ahead): for the
                # others, the end goes out at once.
                with self._lock:
                    full = len(self._running) >= self.settings.slots
                self.announce(build.id, wait=full)
            if running is not None:
                running.unlink(missing_ok=True)
            stop.set()
            watcher.join(5)
            with self._lock:
                self._running.pop(build.id, None)
                self._idle_since = time.monotonic()
            self._wake.set()

    def _watch(self, build_id: int, stop: threading.Event) -> None:
        """Heartbeat the build; pass on cancel requests; stop it when no longer ours."""
        next_beat = time.monotonic() + self.settings.heartbeat_interval
        while not stop.wait(self.cancel_poll):
            if build_id in self._handed_back:  # no heartbeat: the server hands it on
                self.runner.cancel(build_id, reason=f"worker {self.name} stopped")
                continue
            try:
                if time.monotonic() >= next_beat:
                    next_beat = time.monotonic() + self.settings.heartbeat_interval
                    if not self.store.heartbeat_build(build_id, self.name):
                        log.warning("build_taken_away", build=build_id, worker=self.name)
                        self.runner.cancel(
                            build_id, reason=f"worker {self.name} no longer owns the build"
                        )
                        continue
                build = self.store.get_build(build_id)
                if build.cancel_requested:
                    # Repeated until the runner ends it: a request that comes
                    # during the checkout finds no running steps to stop yet.
                    self.runner.cancel(build_id, reason=build.cancel_requested)
            except SauCIError as exc:
                log.warning("build_watch_failed", build=build_id, error=str(exc))
