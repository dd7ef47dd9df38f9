"""The CI server loop behind ``sauci serve``: triggers in, builds out.

One loop thread turns spooled pushes, polls and cron ticks into queued builds
(through the Scheduler) and hands the queue to its runner (a
:class:`sauci.typing.Runner`): threads of this process that claim builds
while build slots are free, or, with a broker, a runner that sends them to
worker processes and hands on the builds of lost workers
(docs/distributed.md). Everything it knows is in the store, the spool
directory, or derived from them, so a server killed at any point can be
restarted and finish honestly.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import attrs

from sauci._logging import get_logger
from sauci.core.config import Settings
from sauci.core.events import subscribe
from sauci.core.lost import end_lost_build, owner_is_gone
from sauci.core.models import Build, BuildRequest, Status, request_again
from sauci.core.paths import secure_data_dir
from sauci.core.resources import Resources
from sauci.core.scheduler import Scheduler
from sauci.exceptions import ConfigError, SauCIError
from sauci.typing import Runner, Store, Trigger

__all__ = ["Server", "ServerOptions", "read_status"]

log = get_logger(__name__)


@attrs.frozen(kw_only=True)
class ServerOptions:
    """How the server schedules; each has a default, a setting and a flag."""

    max_builds: int = attrs.field(default=2, validator=attrs.validators.ge(1))  # in-process
    # CPUs and memory builds declare (`resources:`) are placed in; None: this machine's.
    capacity: Resources | None = None
    # Step slots shared by all builds; a step declares its `weight`. None: 2 x CPUs.
    step_slots: int | None = None
    poll_interval: float = 60.0  # seconds between polls of repositories without hooks
    # The loop runs when something happens: a build queued or ended in this
    # process (its UI, polls, cron, webhooks), or a poke on the spool's wake
    # pipe (git hooks, `sauci cancel`, `sauci rerun`). Besides, a safety round
    # runs every ``tick`` s while builds run (cancel requests and builds queued
    # by processes that cannot poke: a separate web site, another client of a
    # shared store) and, with nothing running, less and less often down to
    # once per ``idle_tick`` s.
    tick: float = attrs.field(default=0.25, validator=attrs.validators.gt(0))
    idle_tick: float = attrs.field(default=1.0, validator=attrs.validators.gt(0))
    retry_interrupted: bool = True  # requeue builds a crashed server left running
    cancel_superseded: bool = False


def read_status(data_dir: Path) -> dict[str, Any] | None:
    """The last status a server wrote (pid, started_at, heartbeat, last_error), or None."""
    try:
        return json.loads((data_dir / "server.json").read_text())
    except (OSError, ValueError):
        return None


class Spool(Protocol):
    """Pushes git hooks write to ``spool_dir``, each recorded as coming from its
    pusher; :meth:`acknowledge` deletes the files :meth:`due` read, once their
    requests are in the store."""

    spool_dir: Path

    def due(self, now: float) -> list[BuildRequest]: ...

    def acknowledge(self) -> None: ...

    def watch(self, on_wake: Callable[[], None]) -> Callable[[], None]:
        """Call ``on_wake`` when another process says there is work; returns the stop."""
        ...


class Server:
    """Builds every push to the given repositories: here, or on workers through a broker.

    Made by :func:`sauci.app.server.build_server`, which hands it every part as an
    instance: the ``runner`` that takes the queued builds (here, or to
    workers), the ``spool`` and the other ``triggers`` (polls, cron) that say
    which builds are due, and ``sweep``, which ends the step processes a
    crashed predecessor left.
    """

    def __init__(
        self,
        *,
        store: Store,
        settings: Settings,
        runner: Runner,
        spool: Spool,
        triggers: Sequence[Trigger] = (),
        repos: Sequence[str] = (),
        options: ServerOptions | None = None,
        sweep: Callable[[], list[str]] = list,
        sandboxes: Any = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.options = options or ServerOptions()
        self.runner = runner
        self.name = runner.name
        self.host = os.uname().nodename  # the machine's name, as socket.gethostname() says it
        self.scheduler = Scheduler(store)
        self.spool = spool
        self.triggers = list(triggers)
        self.sweep = sweep
        self.sandboxes = sandboxes  # the policy in force, for what the server says at start
        self.repos = list(repos)
        self.started_at = time.time()
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._lock_file: Any = None
        self._loop: threading.Thread | None = None
        self._next_prune = 0.0
        self._next_delivery = 0.0
        self._status_at = 0.0
        # A build was queued or ended in this process, or another process poked.
        self._woken = threading.Event()
        # Another process poked (or a safety round is due): the next round reads
        # the spool and asks the triggers too, not only the runner.
        self._full = True
        self._full_lock = threading.Lock()
        self._unsubscribe: Callable[[], None] | None = None
        self._unwatch: Callable[[], None] | None = None

    # -- life cycle ------------------------------------------------------------

    def start(self) -> None:
        """Take the data directory's lock, recover, then run the loop in a thread."""
        self.runner.start(self._error)  # a broker that is down is an error now, not in every tick
        secure_data_dir(
            self.settings.data_dir,
            traversable=bool(getattr(self.sandboxes, "traversable", False)),
        )
        self._lock_file = (self.settings.data_dir / "server.lock").open("w")
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            raise ConfigError(
                f"another sauci serve is running on {self.settings.data_dir}; stop it or use --data-dir"
            ) from exc
        for sub in ("tmp", "new"):
            (self.spool.spool_dir / sub).mkdir(parents=True, exist_ok=True)
        self.recover()
        self._write_status()
        self._unsubscribe = subscribe(self._on_event)
        self._unwatch = self.spool.watch(self._poked)
        self._loop = threading.Thread(target=self._run, name="sauci-server", daemon=True)
        self._loop.start()
        log.info(
            "server_started",
            name=self.name,
            repos=len(self.repos),
            mode=self.runner.mode,
        )

    def stop(self, *, reason: str = "SauCI server stopped", timeout: float = 30.0) -> None:
        """Stop claiming, cancel running builds, wait for them to record their end."""
        self._stop.set()
        self._woken.set()  # the loop sees the stop now
        deadline = time.monotonic() + timeout
        self.runner.stop(reason=reason, timeout=timeout)
        if self._loop is not None:
            self._loop.join(max(0.0, deadline - time.monotonic()))
        if self._unsubscribe is not None:
            self._unsubscribe()
        if self._unwatch is not None:
            self._unwatch()
        if self._lock_file is not None:
            self._lock_file.close()
        log.info("server_stopped", name=self.name)

    def wait(self) -> None:
        while not self._stop.wait(0.5):
            pass

    # -- recovery ----------------------------------------------------------------

    def recover(self) -> list[Build]:
        """Finish honestly what a crashed server left: end its processes, requeue its builds."""
        swept = self.sweep()
        if swept:
            log.warning("leftover_steps_ended", cgroups=len(swept))
        from sauci.core.journal import replay_journals

        replay_journals(self.store, self.settings.data_dir)  # steps keep the ends they had
        requeued = []
        for build in self.store.list_builds(status=Status.RUNNING, limit=1000):
            if not owner_is_gone(build.claimed_by, self.host):
                continue
            reason = "SauCI restarted during the build"
            # A build whose runner died this many times may be what kills it:
            # ending it keeps the server from a crash loop.
            worn_out = build.attempt >= self.settings.attempts
            if worn_out:
                reason = f"the runner died {build.attempt} times; not tried again"
            # Ended first, so that the requeued copy is not taken for a duplicate of it.
            end_lost_build(self.store, build, reason)
            if self.options.retry_interrupted and not worn_out:
                again = request_again(build, attempt=build.attempt + 1)
                new = self.scheduler.enqueue(again, actor="sauci")
                reason = f"{reason}; requeued as build {new.id}"
                self.store.update_build(build.id, reason=reason)
                requeued.append(new)
            log.warning("build_interrupted", build=build.id, reason=reason)
        self.ingest_spool()
        return requeued

    # -- the loop ----------------------------------------------------------------

    def _run(self) -> None:
        """Sleep until woken (or the next safety round), then make a full round."""
        wait = self.options.tick  # until the next safety round, growing while idle
        next_round = 0.0
        while not self._stop.is_set():
            # At least once a second: the heartbeat readyz/ and `sauci status` read.
            woken = self._woken.wait(min(1.0, max(0.0, next_round - time.monotonic())))
            if self._stop.is_set():
                return
            if not woken and time.monotonic() < next_round:
                self._write_status(throttle=True)
                continue
            self._woken.clear()  # what wakes it from here on makes another round
            # Woken by this process's own news (a build queued, a slot free, a
            # cancel), only the runner has something to do: the spool, polls
            # and cron wait for a poke or the safety round.
            with self._full_lock:
                full, self._full = self._full, False
            full = full or not woken or time.monotonic() >= next_round
            try:
                self.tick() if full else self._runner_round()
            except SauCIError as exc:
                self._error(str(exc))
            except Exception as exc:  # the loop must survive a bug in one round
                log.exception("server_tick_failed")
                self._error(f"{type(exc).__name__}: {exc}")
            wait = self._next_wait(wait)
            next_round = time.monotonic() + wait

    def _next_wait(self, wait: float) -> float:
        """``tick`` while builds run here; doubling up to ``idle_tick`` while none do."""
        if self.runner.busy():
            return self.options.tick
        return min(max(wait, self.options.tick) * 2, max(self.options.idle_tick, self.options.tick))

    def _on_event(self, name: str, fields: Mapping[str, Any]) -> None:
        if name in ("build_queued", "build_cancel_requested"):
            self._woken.set()
        elif name == "runner_slot_free" and not fields.get("refilled"):
            self._woken.set()  # a slot its runner did not fill again at once

    def _poked(self) -> None:
        with self._full_lock:
            self._full = True
        self._woken.set()

    def _error(self, message: str) -> None:
        self.last_error = message
        self._write_status()

    def tick(self) -> None:
        """One round: spool, polls, cron, retention, then the runner's round."""
        self.ingest_spool()
        self._triggers_due()
        self._prune_due()
        self._deliver_due()
        self._runner_round()

    def _runner_round(self) -> None:
        self.runner.tick()
        self._write_status(throttle=True)

    def ingest_spool(self) -> int:
        """Turn spooled push requests into queued builds.

        A spool file is acknowledged (deleted) only once every request in it
        is in the store, so a crash loses none.
        """
        requests = self.spool.due(time.time())
        for request in requests:
            self._enqueue(request, request.pusher, self.options.cancel_superseded)
        self.spool.acknowledge()
        return len(requests)

    def _enqueue(self, request: BuildRequest, actor: str, supersede: bool) -> None:
        """Queue one pushed request. A StoreError is raised (the store may be
        back next round, and the spool keeps the push until then); any other
        error is SauCI failing on this push alone (a value the store's driver
        refuses): logged and dropped, never retried in front of every later push."""
        try:
            self.scheduler.enqueue(request, actor=actor, cancel_superseded=supersede)
        except SauCIError:
            raise
        except Exception as exc:
            log.exception("push_not_queued", repo=request.repo, ref=request.ref, sha=request.sha)
            self._error(f"a push of {request.ref!r} was not queued: {type(exc).__name__}: {exc}")

    def _triggers_due(self) -> None:
        """Queue what the polls and schedules say is due."""
        now = time.time()
        for trigger in self.triggers:
            try:
                requests = trigger.due(now)
            except SauCIError as exc:
                self._error(str(exc))
                continue
            supersede = self.options.cancel_superseded and trigger.supersedes
            for request in requests:
                self._enqueue(request, trigger.actor, supersede)
            if trigger.last_error:
                self._error(trigger.last_error)

    def _prune_due(self) -> None:
        settings = self.settings
        if settings.keep_builds is None and settings.keep_days is None:
            return
        if time.monotonic() < self._next_prune:
            return
        self._next_prune = time.monotonic() + 600.0
        from sauci.core.retention import prune

        prune(
            settings.data_dir,
            keep_builds=settings.keep_builds,
            keep_days=settings.keep_days,
            before_delete=getattr(self.store, "absorb_log_files", None),
        )

    def _deliver_due(self) -> None:
        """Every 5 s: what builds owe a store that was down (sauci.core.undelivered)."""
        if time.monotonic() < self._next_delivery:
            return
        self._next_delivery = time.monotonic() + 5.0
        from sauci.core.undelivered import deliver_pending

        deliver_pending(self.store, self.settings.data_dir)

    def _write_status(self, *, throttle: bool = False) -> None:
        now = time.time()
        if throttle and now - self._status_at < 1.0:
            return
        self._status_at = now
        status = {
            "name": self.name,
            "pid": os.getpid(),
            "started_at": self.started_at,
            "heartbeat": now,
            "running": self.runner.running(),
            "last_error": self.last_error,
            "repos": self.repos,
            # In-process capacity and use by declared cost (ThreadedRunner.room).
            "capacity": getattr(self.runner, "room", lambda: None)(),
            # Each worker's capacity and use by declared cost (CeleryRunner.worker_rooms).
            "workers": getattr(self.runner, "worker_rooms", lambda: None)(),
            # Workers launched on demand (sauci.distributed.LaunchingRunner).
            "launcher": getattr(self.runner, "launcher_status", lambda: None)(),
        }
        path = self.settings.data_dir / "server.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(status))
        os.replace(tmp, path)
