"""CeleryRunner, the server's half of distributed runs: send queued builds, hand on lost ones.

It is the :class:`sauci.typing.Runner` of a server with a broker. It owns every decision about a build's state that is not a
worker's own claim or result, and keeps nothing that matters in memory: what
it forgets in a restart (which builds it already sent) costs at most a
duplicate message, which the worker drops because its claim fails.

Liveness is judged by this process's monotonic clock: a heartbeat is fresh
while its value keeps changing, so the clocks of worker hosts need not agree
with the server's (a first sight uses the wall clock, capped at half the
timeout, so a restarted server neither waits a whole timeout nor declares a
live build lost because of a skewed clock). Time during which the server could
not read the store is nobody's silence: while the store is down, no worker can
write a heartbeat either.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import attrs

from sauci._logging import get_logger
from sauci.core.capacity import declared_costs
from sauci.core.claim_gate import ClaimGate
from sauci.core.config import Settings
from sauci.core.durations import DurationHistory
from sauci.core.events import emit
from sauci.core.models import Build, Status, Worker
from sauci.core.runner import PipelineLoader
from sauci.distributed._liveness import Liveness
from sauci.distributed._lost import end_lost
from sauci.distributed._placing import (
    WAITING,
    CostPlacer,
    declares_capacity,
    read_once,
    send_by_cost,
)
from sauci.distributed._queues import queue_name
from sauci.distributed._routes import read_runs_on
from sauci.exceptions import ConfigError, SauCIError, SourceError, StoreError
from sauci.typing import Commit, Source, Store

__all__ = ["WAITING", "Broker", "CeleryRunner"]

log = get_logger(__name__)

T = TypeVar("T")

_LOCAL_OWNERS = ("serve:", "local-")  # in-process runners: recovered by Server.recover


class Broker(Protocol):
    """The server's side of the broker (:class:`~sauci.distributed.BrokerClient`, or a fake)."""

    def check(self) -> None:
        """Raise SauCIError naming the broker when it cannot be reached."""

    def send(self, build_id: int, queue: str) -> None:
        """Put "build ``build_id`` is ready" on ``queue``."""

    def close(self) -> None:
        """Let go of the connection."""

    # Optional: ``watch_ended(on_end) -> stop``, which calls ``on_end(build_id)``
    # when a worker announces a build's end (BrokerClient has it; fakes may not).


class CeleryRunner:
    """Turns queued builds into broker messages and lost builds into verdicts.

    ``broker`` sends (a :class:`~sauci.distributed.BrokerClient`, or a fake in
    tests); ``name`` is the server's owner name for the builds it ends itself.
    No build runs in this process: workers claim them by id, and see cancel
    requests in the store themselves.
    """

    mode = "dispatch to workers"

    def __init__(
        self,
        *,
        store: Store,
        settings: Settings,
        broker: Broker,
        name: str,
        sources: Callable[[str], Source],
        pipeline_loader: PipelineLoader | None = None,
        gate: ClaimGate | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.settings = settings
        self.broker = broker
        # The Source of a repository (sauci.app.git_sources): where the
        # pipeline's runs_on is read before a build is sent.
        self._make_source = sources = read_once(sources)  # one read per commit, shared
        # Reads a repository without .sauci.yml (its workflow files) from a
        # checkout, as the workers will: sauci.workflows.load_for_build.
        self.pipeline_loader = pipeline_loader
        self.gate = gate  # holds queued builds back (GitHub's concurrency): never sent
        self.name = name
        self.clock = clock
        self.monotonic = monotonic
        self.liveness = Liveness(settings.lost_timeout, clock=clock, monotonic=monotonic)
        # Re-send a build still queued this long after its message, when a
        # worker that could take it has a free slot: the message may have died
        # with a worker that had received but not yet claimed it.
        self.resend_after = max(2 * settings.lost_timeout, 10.0)
        self.lost_check_every = min(1.0, settings.lost_timeout / 6)
        self.prune_after = max(3600.0, 10 * settings.lost_timeout)  # forget a silent worker
        self.placer = CostPlacer(
            cost_of=declared_costs(sources),
            resend_after=self.resend_after,
            history=DurationHistory(store, clock=clock),
            wait_bound=settings.drain_wait,
            defer=settings.place_defer,
        )
        self.worker_rooms = self.placer.room_status  # for server.json and the web page
        self._sent: dict[int, float] = {}  # build id -> monotonic time sent
        self._routes: dict[int, tuple[str, ...]] = {}  # build id -> runs_on read from its pipeline
        self._shas: dict[int, str] = {}  # build id -> the commit its route was read at
        # What a route learnt (sha, author, runs_on) and the store has not yet:
        # written before the build is sent, the rest after the round's sends.
        self._unwritten: dict[int, dict[str, Any]] = {}
        self._sources: dict[str, Source] = {}
        self._parsed: dict[str, tuple[str, ...]] = {}  # .sauci.yml text -> runs_on
        self._next_lost_check = 0.0
        self._last_read: float | None = None  # monotonic time of the last store read that worked
        self._blind_since: float | None = None  # the last good read before the store failed
        # Held for a round, so that stop() closes the broker between rounds.
        self._lock = threading.Lock()
        self._stopped = False
        self._unwatch: Callable[[], None] | None = None

    # -- the server's Runner ---------------------------------------------------

    def start(self, report: Callable[[str], None]) -> None:
        """Connect to the broker once; failures of a round reach the server's loop.
        Then listen for builds' ends on workers: each wakes the server's loop
        (``runner_slot_free``), which places the next build at once."""
        self.broker.check()
        watch = getattr(self.broker, "watch_ended", None)
        if watch is not None:
            self._unwatch = watch(self._slot_freed)

    def _slot_freed(self, build_id: int) -> None:
        build = None
        with contextlib.suppress(SauCIError):
            build = self.store.get_build(build_id)
        emit("runner_slot_free", runner=self.name, build=build)

    def busy(self) -> bool:
        return True  # workers' queues and liveness are looked at every tick

    def running(self) -> list[int]:
        return []  # builds run on workers

    def stop(self, *, reason: str, timeout: float) -> None:
        """Send no more; close the broker after the round under way (at most ``timeout`` s)."""
        if self._unwatch is not None:
            self._unwatch()
        acquired = self._lock.acquire(timeout=timeout)
        try:
            self._stopped = True
            with contextlib.suppress(Exception):
                self.broker.close()
        finally:
            if acquired:
                self._lock.release()

    # -- one round -------------------------------------------------------------

    def tick(self) -> None:
        """Check for lost builds (now and then), then send what is ready."""
        with self._lock:
            if self._stopped:
                return
            if self.monotonic() >= self._next_lost_check:
                self._next_lost_check = self.monotonic() + self.lost_check_every
                self.hand_on_lost()
            if self.gate is not None:
                # Routed first: the gate then reads each build at its commit
                # (read once per commit) rather than at its branch (once a round).
                queued = self._read(
                    lambda: self.store.list_builds(status=Status.QUEUED, limit=1000)
                )
                for build in queued:
                    self._route(build)
                self.record_routes()  # the gate reads each build at its recorded commit
                self.gate.refresh()
            self.dispatch()

    def live_workers(self, workers: list[Worker] | None = None) -> list[Worker]:
        """Workers taking builds: online, with a heartbeat that still changes."""
        workers = self._read(self.store.list_workers) if workers is None else workers
        return [
            w
            for w in workers
            if w.state == "online" and self.liveness.fresh(("worker", w.name), w.heartbeat_at)
        ]

    def dispatch(self) -> list[int]:
        """Send every queued build some live worker can run; returns the ids sent."""
        queued = self._read(lambda: self.store.list_builds(status=Status.QUEUED, limit=1000))
        ids = {b.id for b in queued}
        for table in (self._sent, self._routes, self._shas, self._unwritten):
            for build_id in [k for k in table if k not in ids]:
                del table[build_id]
        if self.gate is not None:
            queued = [b for b in queued if self.gate.may_claim(b.id)]
        if not queued and not self.placer.holding():
            return []
        live = self.live_workers()
        if declares_capacity(live):  # placed by declared cost (_placing.py)
            return send_by_cost(self.placer, self, queued, live, self._route)
        if not queued:
            return []
        # Workers of an older SauCI: by labels. Free slots: what re-sends may use up this
        # round, so a slot seen free between two builds does not send all again.
        free = {w.name: w.slots - len(w.running) for w in live}
        sent = []
        now = self.monotonic()
        for build in sorted(queued, key=lambda b: (-b.priority, b.id)):
            when = self._sent.get(build.id)
            if when is not None and now - when < self.resend_after:
                continue
            runs_on = self._route(build)
            if runs_on is None:
                continue  # ended errored: its pipeline cannot be read
            able = [w for w in live if set(runs_on) <= set(w.labels)]
            if not able:
                self._wait(build, runs_on)
                continue
            if when is not None:
                taker = next((w.name for w in able if free[w.name] > 0), None)
                if taker is None:
                    continue  # sent already, and every worker that could take it is busy
                free[taker] -= 1
            waited = build.reason and build.reason.startswith(WAITING)
            self.record_route(build.id, **({"reason": None} if waited else {}))
            self.broker.send(build.id, queue_name(runs_on))
            self._sent[build.id] = now
            sent.append(build.id)
            log.info(
                "build_sent" if when is None else "build_resent",
                build=build.id,
                queue=queue_name(runs_on),
            )
        self.record_routes()
        return sent

    def _read(self, read: Callable[[], T]) -> T:
        """``read()`` the store. While it cannot be read, no worker can write its
        heartbeat either: that time is not counted as anyone's silence, or a
        store restart longer than ``lost_timeout`` would end every running build."""
        try:
            value = read()
        except StoreError:
            if self._blind_since is None:
                self._blind_since = self._last_read
            raise
        now = self.monotonic()
        if self._blind_since is not None:
            self.liveness.pause(now - self._blind_since)
            log.info("store_back", blind_seconds=round(now - self._blind_since, 1))
            self._blind_since = None
        self._last_read = now
        return value

    def _wait(self, build: Build, runs_on: tuple[str, ...]) -> None:
        reason = f"{WAITING} with labels: {', '.join(runs_on)}" if runs_on else WAITING
        if build.reason != reason:
            self.store.update_build(build.id, reason=reason)
            log.info("build_waiting", build=build.id, labels=list(runs_on))

    def _route(self, build: Build) -> tuple[str, ...] | None:
        """The labels the build's pipeline asks for, read once at the build's commit."""
        if build.id in self._routes:
            return self._routes[build.id]
        try:
            sha, runs_on, commit = self._read_runs_on(build)
        except (ConfigError, SourceError) as exc:
            self._end_unreadable(build, str(exc))
            return None
        changes: dict[str, Any] = {}
        if sha != build.sha:
            changes["sha"] = sha  # the worker checks out exactly the commit that was read
        if not build.author and commit is not None:
            # Recorded here, so that the worker's runner need not (one git call
            # and one store write less between its claim and the first step).
            changes.update(author=commit.author, message=commit.message)
        if tuple(build.runs_on) != runs_on:
            changes["runs_on"] = runs_on
        if changes:
            self._unwritten[build.id] = changes
        self._routes[build.id] = runs_on
        self._shas[build.id] = sha
        return runs_on

    def record_route(self, build_id: int, **more: Any) -> None:
        """Write what ``build_id``'s route learnt (with ``more`` fields, in one
        write), before it is sent: the worker checks out exactly the commit
        that was read. Of a burst of builds the first round sends a few; the
        others are written after those sends."""
        route = self._unwritten.pop(build_id, None) or {}
        if route or more:
            try:
                self.store.update_build(build_id, **route, **more)
            except StoreError:
                if route:
                    self._unwritten[build_id] = route  # written at a later round
                raise

    def record_routes(self) -> None:
        """Write what every route read since the last round learnt."""
        for build_id in list(self._unwritten):
            self.record_route(build_id)

    def routed(self, build: Build) -> Build:
        """``build`` at the commit its route was read at (a queued build names a branch)."""
        sha = self._shas.get(build.id)
        return build if sha is None or sha == build.sha else attrs.evolve(build, sha=sha)

    def _read_runs_on(self, build: Build) -> tuple[str, tuple[str, ...], Commit | None]:
        source = self._sources.get(build.repo)
        if source is None:
            source = self._sources[build.repo] = self._make_source(build.repo)
        rev = build.sha or build.ref or "HEAD"
        if build.author:
            sha, commit = source.resolve(rev), None
        else:  # one git call (or none: a branch at a commit seen before) for both
            commit = source.resolve_commit(rev)
            sha = commit.sha
        runs_on = read_runs_on(
            source, build, sha, self.settings, self.pipeline_loader, self._parsed
        )
        return sha, runs_on, commit

    def _end_unreadable(self, build: Build, reason: str) -> None:
        """End a queued build errored, as the local runner does for a broken pipeline."""
        claimed = self.store.claim_build(self.name, build_id=build.id)
        if claimed is None:
            return  # cancelled or taken meanwhile
        final = self.store.finish_build(
            build.id, self.name, status=Status.ERRORED, reason=reason, finished_at=self.clock()
        )
        if final is not None:
            log.info("build_finished", build=build.id, status="errored", reason=reason)
            emit("build_finished", build=final)

    # -- lost workers ----------------------------------------------------------

    def hand_on_lost(self) -> list[Build]:
        """End every running build whose worker stopped heartbeating; requeue per policy."""
        running = self._read(lambda: self.store.list_builds(status=Status.RUNNING, limit=1000))
        workers = {w.name: w for w in self._read(self.store.list_workers)}
        self.liveness.keep_only(
            [("build", b.id) for b in running] + [("worker", name) for name in workers]
        )
        self._forget_gone_workers(workers, running)
        ended = []
        for build in running:
            owner = build.claimed_by
            if not owner or owner == self.name:
                continue
            if owner not in workers and (
                build.heartbeat_at is None or owner.startswith(_LOCAL_OWNERS)
            ):
                continue  # run in-process by `sauci run` or a local server: not ours to judge
            silent = self.liveness.silent_for(
                ("build", build.id), build.heartbeat_at or build.started_at
            )
            if silent <= self.settings.lost_timeout:
                continue
            final = self._lost(build, owner, silent)
            if final is not None:
                ended.append(final)
        return ended

    def _forget_gone_workers(self, workers: dict[str, Worker], running: list[Build]) -> None:
        """Remove the records of workers silent for ``prune_after`` with no running build
        (killed workers, replaced pods), so that ``sauci workers`` stays readable."""
        owners = {b.claimed_by for b in running}
        for name, worker in workers.items():
            silent = self.liveness.silent_for(("worker", name), worker.heartbeat_at)
            if name not in owners and silent > self.prune_after:
                self.store.delete_worker(name)
                log.info("worker_forgotten", worker=name, state=worker.state)

    def _lost(self, build: Build, owner: str, silent: float) -> Build | None:
        """End ``build``, lost with its worker ``owner`` (sauci.distributed._lost)."""
        return end_lost(self.store, self.settings, self.name, build, owner, silent, self.clock())
