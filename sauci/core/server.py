"""The CI server loop behind ``sauci serve``: triggers in, builds out.

One loop thread turns spooled pushes, polls and cron ticks into queued builds
(through the Scheduler), passes cancel requests to the runner, and claims
queued builds while build slots are free; each claimed build runs on its own
thread. With a broker (``settings.broker``) the server runs no build itself:
its :class:`~sauci.distributed.Dispatcher` sends queued builds to worker
processes and hands on the builds of lost workers (docs/distributed.md).
Everything it knows is in the store, the spool directory, or derived
from them, so a server killed at any point can be restarted and finish
honestly.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from sauci._logging import get_logger
from sauci.core.config import Settings
from sauci.core.events import subscribe
from sauci.core.executor import SlotPool
from sauci.core.models import Build, BuildRequest, Status, request_again
from sauci.core.paths import secure_data_dir
from sauci.core.runner import LocalRunner
from sauci.core.scheduler import Scheduler
from sauci.core.secrets import Secrets
from sauci.exceptions import ConfigError, SauCIError
from sauci.typing import Sandbox, Store

__all__ = ["Server", "ServerOptions", "read_status"]

log = get_logger(__name__)


@attrs.frozen(kw_only=True)
class ServerOptions:
    """How the server schedules; each has a default, a setting and a flag."""

    max_builds: int = attrs.field(default=2, validator=attrs.validators.ge(1))
    # Step slots shared by all builds; a step declares its `weight`. None: 2 x CPUs.
    step_slots: int | None = None
    poll_interval: float = 60.0  # seconds between polls of repositories without hooks
    tick: float = 0.05  # how often the spool and cancel requests are looked at
    # With nothing running and nothing new, the store is asked for queued builds
    # less and less often, down to once per ``idle_tick`` s: builds queued by
    # another process (a separate web site, another client of a shared store)
    # start within that. Pushes through the spool, and builds queued in this
    # process (its UI, polls, cron, webhooks), are seen within ``tick``.
    idle_tick: float = attrs.field(default=1.0, validator=attrs.validators.gt(0))
    retry_interrupted: bool = True  # requeue builds a crashed server left running
    cancel_superseded: bool = False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _owner_is_gone(claimed_by: str | None, host: str) -> bool:
    """Whether the process named in ``claimed_by`` (local-PID or serve:HOST:PID) is dead."""
    if not claimed_by:
        return True
    parts = claimed_by.split(":")
    if claimed_by.startswith("serve:") and len(parts) == 3:
        return parts[1] == host and parts[2].isdigit() and not _alive(int(parts[2]))
    if claimed_by.startswith("local-") and claimed_by[6:].isdigit():
        return not _alive(int(claimed_by[6:]))
    return False


def read_status(data_dir: Path) -> dict[str, Any] | None:
    """The last status a server wrote (pid, started_at, heartbeat, last_error), or None."""
    try:
        return json.loads((data_dir / "server.json").read_text())
    except (OSError, ValueError):
        return None


class Server:
    """Builds every push to the given repositories: here, or on workers through a broker."""

    def __init__(
        self,
        *,
        store: Store,
        settings: Settings,
        repos: Sequence[str] = (),
        options: ServerOptions | None = None,
        sandbox: Sandbox | None = None,
        secrets: Secrets | None = None,
        broker: Any = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.options = options or ServerOptions()
        self.host = socket.gethostname()
        self.name = f"serve:{self.host}:{os.getpid()}"
        self.scheduler = Scheduler(store)
        self.spool = settings.data_dir / "spool"
        # One cgroup prefix per data directory, so a restarted server can find
        # and end exactly what its crashed predecessor left behind.
        digest = hashlib.sha256(str(settings.data_dir.resolve()).encode()).hexdigest()[:8]
        self.cgroup_prefix = f"sauci-srv{digest}-"
        if sandbox is None and (broker is not None or settings.broker):
            from sauci.sandbox.local import LocalSandbox

            # Workers run the steps; the server ends only builds it cannot start.
            sandbox = LocalSandbox(grace=settings.grace, cgroup_prefix=self.cgroup_prefix)
        from sauci.core.secrets import load_secrets
        from sauci.sandbox.policy import server_sandboxes

        # The server's settings decide where pushed code runs (ConfigError
        # when the sandbox they name cannot run here) and which secrets it gets.
        self.sandboxes = server_sandboxes(
            settings, cgroup_prefix=self.cgroup_prefix, default=sandbox
        )
        self.slots = SlotPool(self.options.step_slots or 2 * (os.cpu_count() or 1))
        self.runner = LocalRunner(
            store=store,
            sandbox=self.sandboxes.default,
            load_sandbox=self.sandboxes.load,
            allowed_sandboxes=self.sandboxes.allowed,
            secrets=load_secrets(settings.secrets_file) if secrets is None else secrets,
            settings=settings,
            name=self.name,
            slots=self.slots,
        )
        # With a broker (settings.broker, or a sender handed in), builds go to
        # `sauci worker`s and this server only dispatches; without, it runs them.
        self.broker = broker
        self.dispatcher: Any = None
        if self.broker is None and settings.broker:
            from sauci.distributed import BrokerClient

            self.broker = BrokerClient(
                settings.broker, visibility_timeout=settings.visibility_timeout
            )
        if self.broker is not None:
            from sauci.distributed import Dispatcher

            self.dispatcher = Dispatcher(
                store=store,
                settings=settings,
                broker=self.broker,
                name=self.name,
            )
        self.repos = list(repos)
        self.started_at = time.time()
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._threads: dict[int, threading.Thread] = {}
        self._lock_file: Any = None
        self._loop: threading.Thread | None = None
        self._poller: Any = None
        self._next_poll = 0.0
        self._cron: dict[tuple[str, str, str], Any] = {}  # (repo, cron, branch) -> next time
        self._next_cron_refresh = 0.0
        self._next_prune = 0.0
        self._status_at = 0.0
        self._woken = threading.Event()  # a build was queued or ended in this process
        self._unsubscribe: Callable[[], None] | None = None

    # -- life cycle ------------------------------------------------------------

    def start(self) -> None:
        """Take the data directory's lock, recover, then run the loop in a thread."""
        if self.broker is not None and hasattr(self.broker, "check"):
            self.broker.check()  # a broker that is down is an error now, not in every tick
        secure_data_dir(
            self.settings.data_dir,
            traversable=self.sandboxes.traversable,
        )
        self._lock_file = (self.settings.data_dir / "server.lock").open("w")
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            raise ConfigError(
                f"another sauci serve is running on {self.settings.data_dir}; stop it or use --data-dir"
            ) from exc
        for sub in ("tmp", "new"):
            (self.spool / sub).mkdir(parents=True, exist_ok=True)
        self.recover()
        self._write_status()
        self._unsubscribe = subscribe(self._on_event)
        self._loop = threading.Thread(target=self._run, name="sauci-server", daemon=True)
        self._loop.start()
        log.info(
            "server_started",
            name=self.name,
            repos=len(self.repos),
            mode="dispatch to workers" if self.dispatcher is not None else "in-process",
        )

    def stop(self, *, reason: str = "SauCI server stopped", timeout: float = 30.0) -> None:
        """Stop claiming, cancel running builds, wait for them to record their end."""
        self._stop.set()
        for build_id in list(self._threads):
            self.runner.cancel(build_id, reason=reason)
        deadline = time.monotonic() + timeout
        for thread in list(self._threads.values()):
            thread.join(max(0.0, deadline - time.monotonic()))
        if self._loop is not None:
            self._loop.join(max(0.0, deadline - time.monotonic()))
        if self._unsubscribe is not None:
            self._unsubscribe()
        if self._lock_file is not None:
            self._lock_file.close()
        if self.broker is not None and hasattr(self.broker, "close"):
            with contextlib.suppress(Exception):
                self.broker.close()
        log.info("server_stopped", name=self.name)

    def wait(self) -> None:
        while not self._stop.wait(0.5):
            pass

    # -- recovery ----------------------------------------------------------------

    def recover(self) -> list[Build]:
        """Finish honestly what a crashed server left: end its processes, requeue its builds."""
        from sauci.sandbox._proctree import sweep

        swept = sweep(self.cgroup_prefix)
        if swept:
            log.warning("leftover_steps_ended", cgroups=len(swept))
        requeued = []
        for build in self.store.list_builds(status=Status.RUNNING, limit=1000):
            if not _owner_is_gone(build.claimed_by, self.host):
                continue
            reason = "SauCI restarted during the build"
            # A build whose runner died this many times may be what kills it:
            # ending it keeps the server from a crash loop.
            worn_out = build.attempt >= self.settings.attempts
            if worn_out:
                reason = f"the runner died {build.attempt} times; not tried again"
            # Ended first, so that the requeued copy is not taken for a duplicate of it.
            self.store.update_build(
                build.id, status=Status.ERRORED, reason=reason, finished_at=time.time()
            )
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
        wait = self.options.tick  # until the next full round, growing while idle
        next_round = 0.0
        while not self._stop.is_set():
            try:
                # Between full rounds only the spool is read (no store query);
                # a push found there makes this turn a full round.
                if self._round_due(next_round) or self.ingest_spool() > 0:
                    self._woken.clear()
                    self.tick()
                    wait = self._next_wait(wait)
                    next_round = time.monotonic() + wait
                else:
                    self._write_status(throttle=True)  # the heartbeat readyz/ reads
            except SauCIError as exc:
                self._error(str(exc))
            except Exception as exc:  # the loop must survive a bug in one tick
                log.exception("server_tick_failed")
                self._error(f"{type(exc).__name__}: {exc}")
            self._stop.wait(self.options.tick)

    def _round_due(self, next_round: float) -> bool:
        """Whether this turn of the loop makes a full round (:meth:`tick`)."""
        return bool(
            self.dispatcher is not None  # workers' queues and liveness: every tick
            or self._threads  # cancel requests and free slots: every tick
            or self._woken.is_set()
            or time.monotonic() >= next_round
        )

    def _next_wait(self, wait: float) -> float:
        """``tick`` while builds run here; doubling up to ``idle_tick`` while none do."""
        if self.dispatcher is not None or self._threads:
            return self.options.tick
        return min(max(wait, self.options.tick) * 2, max(self.options.idle_tick, self.options.tick))

    def _on_event(self, name: str, fields: Mapping[str, Any]) -> None:
        if name in ("build_queued", "build_finished"):
            self._woken.set()

    def _error(self, message: str) -> None:
        self.last_error = message
        self._write_status()

    def tick(self) -> None:
        """One round: spool, polls, cancel requests, dispatch (to workers, with a broker)."""
        self.ingest_spool()
        self._poll_due()
        self._cron_due()
        self._prune_due()
        if self.dispatcher is not None:
            # Workers run the builds: they see cancel requests in the store.
            self.dispatcher.tick()
        else:
            self._pass_cancels()
            self._dispatch()
        self._write_status(throttle=True)

    def ingest_spool(self) -> int:
        """Turn spooled push requests into queued builds.

        A spool file may hold several refs; it is acknowledged (deleted) only
        once every one of them is in the store, so a crash loses none.
        """
        from itertools import groupby

        from sauci.triggers import ack, read_requests

        count = 0
        for path, entries in groupby(read_requests(self.spool), key=lambda item: item[0]):
            for _, request in entries:
                self.scheduler.enqueue(
                    request, actor=request.pusher, cancel_superseded=self.options.cancel_superseded
                )
                count += 1
            ack(path)
        return count

    def _poll_due(self) -> None:
        now = time.monotonic()
        if not self.repos or now < self._next_poll:
            return
        self._next_poll = now + self.options.poll_interval
        from sauci.triggers import Poller

        if self._poller is None:
            self._poller = Poller(self.settings.data_dir / "poller.json")
        for repo in self.repos:
            if _has_hook(repo):
                continue
            try:
                for request in self._poller.poll(repo):
                    self.scheduler.enqueue(
                        request, actor="poller", cancel_superseded=self.options.cancel_superseded
                    )
            except SauCIError as exc:
                self._error(f"polling {repo}: {exc}")

    def schedules(self) -> list[tuple[str, str, str]]:
        """Every (repo, cron, branch): from sauci.toml, and from each repository's .sauci.yml."""
        found = list(self.settings.schedules)
        for repo in self.repos:
            try:
                from sauci.core.pipeline import parse_pipeline
                from sauci.git import read_file

                text = read_file(repo, "HEAD", ".sauci.yml")
                if text is None:
                    continue
                pipeline = parse_pipeline(text, f"{repo}:.sauci.yml")
            except SauCIError as exc:
                self._error(f"reading the schedule of {repo}: {exc}")
                continue
            found.extend((repo, s.cron, s.branch) for s in pipeline.schedules)
        return found

    def _cron_due(self) -> None:
        from datetime import UTC, datetime

        from sauci.triggers import CronSchedule

        now = datetime.now(UTC)
        if time.monotonic() >= self._next_cron_refresh:
            # Re-read schedules now and then: a push may change .sauci.yml.
            self._next_cron_refresh = time.monotonic() + max(self.options.poll_interval, 30.0)
            wanted = set(self.schedules())
            self._cron = {
                key: self._cron.get(key) or CronSchedule.parse(key[1]).next_after(now)
                for key in wanted
            }
        for key, due in list(self._cron.items()):
            if due > now:
                continue
            repo, cron, branch = key
            self._cron[key] = CronSchedule.parse(cron).next_after(now)
            self.scheduler.enqueue(
                BuildRequest(repo=repo, ref=f"refs/heads/{branch}", event="cron", pusher="cron"),
                actor="cron",
            )
            log.info("cron_triggered", repo=repo, cron=cron, branch=branch)

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

    def _pass_cancels(self) -> None:
        for build_id in list(self._threads):
            try:
                build = self.store.get_build(build_id)
            except SauCIError:
                continue
            if build.cancel_requested:
                self.runner.cancel(build_id, reason=build.cancel_requested)

    def _dispatch(self) -> None:
        for build_id, thread in list(self._threads.items()):
            if not thread.is_alive():
                del self._threads[build_id]
        while not self._stop.is_set() and len(self._threads) < self.options.max_builds:
            build = self.store.claim_build(self.name)
            if build is None:
                return
            thread = threading.Thread(
                target=self._run_build, args=(build,), name=f"sauci-build-{build.id}"
            )
            self._threads[build.id] = thread
            thread.start()

    def _run_build(self, build: Build) -> None:
        try:
            self.runner.run_build(build)
        except Exception as exc:  # record, never lose the build in "running"
            log.exception("build_crashed", build=build.id)
            with contextlib.suppress(SauCIError):
                self.store.update_build(
                    build.id,
                    status=Status.ERRORED,
                    reason=f"SauCI failed: {exc}",
                    finished_at=time.time(),
                )
            self._error(f"build {build.id}: {exc}")

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
            "running": sorted(self._threads),
            "last_error": self.last_error,
            "repos": self.repos,
        }
        path = self.settings.data_dir / "server.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(status))
        os.replace(tmp, path)


def _has_hook(repo: str) -> bool:
    """Whether a SauCI hook is installed in the local repository ``repo``."""
    path = Path(repo)
    if not path.exists():
        return False
    from sauci.triggers import hook_installed

    return hook_installed(path)
