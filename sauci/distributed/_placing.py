"""The dispatcher's placement by declared cost: which queued build goes to which worker now.

The policy is :func:`sauci.core.placement.place` (weighted fair queueing,
best fit, bounded backfill), over the live workers' rooms: the capacity each
declares (``sauci worker --cpus/--memory``, else its machine's) minus the
declared cost of the builds it runs and of those sent to it and not yet
claimed. A placed build is sent to its worker's own queue (``sauci@NAME``,
:func:`~sauci.distributed._queues.own_queue`), so the placement is honoured,
not left to whichever worker takes the message first.

A build that declares no cost costs the smallest slot share among the live
workers (capacity / slots), so builds that declare nothing run ``slots`` at
once on every worker, as before costs existed. Workers of an older SauCI
record no capacity (0): they count as ``slots`` such shares, and take their
builds from the label queues they consume.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

import attrs

from sauci._logging import get_logger
from sauci.core.durations import DurationHistory, Forecast
from sauci.core.models import Build, Status, Worker
from sauci.core.placement import RunningBuild, WaitingBuild, WorkerRoom, place
from sauci.core.resources import DEFAULT_RESOURCES, Resources
from sauci.distributed._ahead import plan_ahead, take_ahead
from sauci.distributed._queues import own_queue, queue_name
from sauci.exceptions import SauCIError
from sauci.typing import Source, Store

__all__ = ["WAITING", "CostPlacer", "Sends", "declares_capacity", "read_once", "send_by_cost"]

log = get_logger(__name__)

WAITING = "waiting for a worker"  # "...", "... with labels: gpu, linux", "...: why"


def declares_capacity(workers: Sequence[Worker]) -> bool:
    """Whether any of ``workers`` records a capacity (a SauCI that places by cost)."""
    return any(w.cpus > 0 for w in workers)


@attrs.frozen(kw_only=True)
class Sends:
    """One round's placement: what to send where, and why the others wait."""

    sends: tuple[tuple[Build, str, str], ...]  # (build, worker, queue), in start order
    waiting: Mapping[int, str]  # build id -> reason, "waiting for a worker: ..."


class CostPlacer:
    """Remembers what it sent where, the declared costs it read, and the
    CPU-seconds each repository was served (for fairness across rounds)."""

    def __init__(
        self,
        *,
        cost_of: Callable[[Sequence[Build]], list[Resources | None]],
        resend_after: float,
        hold_after: float = 1.0,
        starve_after: float = 30.0,
        history: DurationHistory | None = None,  # expected durations: when a heavy build drains
        wait_bound: float | None = None,  # a lighter build's longest expected wait (drain_wait)
        defer: float = 0.0,  # the last free worker, taken whole: place_defer (placement rule 4)
    ) -> None:
        self.history = history
        self.defer = defer
        self.wait_bound = wait_bound
        self._reserved: dict[int, tuple[str, float]] = {}
        self.cost_of = cost_of  # sauci.core.capacity.declared_costs: one read per commit
        self.resend_after = resend_after
        self.hold_after = hold_after
        self.starve_after = starve_after
        self._costs: dict[int, Resources | None] = {}
        self._repos: dict[int, str] = {}  # build -> repository, of those queued or running
        self._assigned: dict[int, tuple[str, float]] = {}  # build -> worker, monotonic sent
        # Builds sent ahead to a worker whose slots were all taken (see _ahead.py):
        # build -> worker, monotonic sent. They hold no room until a slot frees.
        self._ahead: dict[int, tuple[str, float]] = {}
        self._running: dict[int, tuple[str, float, float]] = {}  # build -> repo, cpus, start
        self._served: dict[str, float] = {}  # CPU-seconds of builds that ended
        self.rooms: list[WorkerRoom] = []  # the live workers' rooms at the last round

    def holding(self) -> bool:
        """Whether a worker held builds at the last round (its use must be seen to end)."""
        return any(r.running for r in self.rooms)

    def room_status(self) -> list[dict[str, Any]] | None:
        """The live workers' capacity and use at the last round, for server.json and
        the web page; None before any worker declared capacity."""
        if not self.rooms:
            return None
        return [
            {
                "name": r.name,
                "cpus": r.capacity.cpus,
                "memory": r.capacity.memory,
                "cpus_used": r.used_cpus,
                "memory_used": r.used_memory,
                "builds": r.running,
                "slots": r.max_builds,
            }
            for r in self.rooms
        ]

    def default_cost(self, live: Sequence[Worker]) -> Resources:
        """What a build that declares nothing costs: the smallest slot share."""
        shares = [(w.cpus / w.slots, max(w.memory // w.slots, 1)) for w in live if w.cpus > 0]
        if not shares:
            return DEFAULT_RESOURCES
        return Resources(cpus=min(c for c, _ in shares), memory=min(m for _, m in shares))

    def plan(
        self,
        queued: Sequence[tuple[Build, tuple[str, ...]]],
        running: Sequence[Build],
        live: Sequence[Worker],
        *,
        now: float,
        mono: float,
    ) -> Sends:
        """Place ``queued`` (each with its ``runs_on``) on ``live`` workers, which
        run ``running``; ``now`` is the wall clock, ``mono`` the monotonic one."""
        self._learn_costs([b for b, _ in queued] + list(running))
        default = self.default_cost(live)
        cost = {i: c or default for i, c in self._costs.items()}
        self._charge(running, cost, now)
        names = {w.name for w in live}
        queued_ids = {b.id for b, _ in queued}
        for build_id, (name, sent) in list(self._assigned.items()):
            if build_id not in queued_ids or name not in names or mono - sent >= self.resend_after:
                del self._assigned[build_id]  # claimed, gone, or its message lost: place again
        for build_id, (name, _) in list(self._ahead.items()):
            # Its message waits for as long as the worker's builds run: no resend time.
            if build_id not in queued_ids or name not in names:
                del self._ahead[build_id]
        rooms = take_ahead(
            [self._room(w, running, cost, default) for w in live],
            self._ahead,
            self._assigned,
            cost,
            mono,
        )
        waiting = [
            WaitingBuild(
                id=b.id,
                repo=b.repo,
                cost=cost[b.id],
                queued_at=b.queued_at,
                priority=b.priority,
                needs=frozenset(runs_on),
            )
            for b, runs_on in queued
            if b.id not in self._assigned
        ]
        served = dict(self._served)
        for repo, cpus, started in self._running.values():
            served[repo] = served.get(repo, 0.0) + cpus * max(now - started, 0.0)
        for build_id in self._assigned:
            # Sent and not yet claimed: charged as the round that placed it
            # charged its start (place(), rule 1), or a lighter build queued
            # before the claim would find that repository unserved.
            repo = self._repos[build_id]
            served[repo] = served.get(repo, 0.0) + cost[build_id].cpus
        holding = [(b, b.claimed_by or "", b.started_at or now) for b in running]
        holding += [(b, self._assigned[b.id][0], now) for b, _ in queued if b.id in self._assigned]
        repos = {b.repo for b, _, _ in holding} | {b.repo for b in waiting}
        forecast = self.history.forecast(repos) if self.history else Forecast()
        plan = place(
            waiting,
            rooms,
            served=served,
            now=now,
            hold_after=self.hold_after,
            starve_after=self.starve_after,
            durations=forecast.durations,
            arrivals=forecast.arrivals,
            running=[
                RunningBuild(id=b.id, repo=b.repo, worker=w, cost=cost[b.id], started_at=t)
                for b, w, t in holding
            ],
            reserved=self._reserved,
            wait_bound=self.wait_bound,
            defer=self.defer,
        )
        self._reserved = dict(plan.reserved)
        by_id = {b.id: (b, runs_on) for b, runs_on in queued}
        workers = {w.name: w for w in live}
        sends = []
        for build_id, name in plan.starts:
            build, runs_on = by_id[build_id]
            queue = own_queue(name) if workers[name].cpus > 0 else queue_name(runs_on)
            self._ahead.pop(build_id, None)  # a slot freed elsewhere first: sent there too
            self._assigned[build_id] = (name, mono)
            sends.append((build, name, queue))
        after = {r.name: r for r in rooms}  # what the page shows: with this round's sends
        for build_id, name in plan.starts:
            after[name] = after[name].with_build(cost[build_id])
        self.rooms = list(after.values())
        # Builds sent ahead to full workers (_ahead.py): to a worker held for a
        # build, that build first, and none when one ended build leaves it too
        # little room (drained for a heavy build: its freed room is that build's).
        placed = {i for i, _ in plan.starts}
        held = {name: (i, cost[i]) for name, i in plan.held.items()}
        ahead_of: dict[str, list[Resources]] = {}
        for build_id, (name, _) in self._ahead.items():  # in the order sent
            ahead_of.setdefault(name, []).append(cost[build_id])
        ahead = plan_ahead(
            [w for w in waiting if w.id not in placed and w.id not in self._ahead],
            [r for r in self.rooms if workers[r.name].cpus > 0],
            ahead_of,
            [cost[b.id] for b, _, _ in holding] + [cost[i] for i in placed],
            [w for _, w, _ in holding] + [w for _, w in plan.starts],
            served=served,
            now=now,
            hold_after=self.hold_after,
            starve_after=self.starve_after,
            held=held,
        )
        for build_id, name in ahead:
            self._ahead[build_id] = (name, mono)
            sends.append((by_id[build_id][0], name, own_queue(name)))
        reasons = {
            i: _reason(why, by_id[i][1]) for i, why in plan.waiting.items() if i not in self._ahead
        }
        return Sends(sends=tuple(sends), waiting=reasons)

    def _learn_costs(self, builds: Sequence[Build]) -> None:
        ids = {b.id for b in builds}
        for gone in [i for i in self._costs if i not in ids]:
            del self._costs[gone]
            # Ended (or cancelled) since the last round: its repository's
            # expected duration may have changed, and is read again now.
            repo = self._repos.pop(gone, None)
            if repo is not None and self.history is not None:
                self.history.ended(repo)
        self._repos.update((b.id, b.repo) for b in builds)
        new = [b for b in builds if b.id not in self._costs]
        if new:
            self._costs.update(zip([b.id for b in new], self.cost_of(new), strict=True))

    def _charge(self, running: Sequence[Build], cost: dict[int, Resources], now: float) -> None:
        """Charge each repository the CPU-seconds of its builds that ended since the last round."""
        ids = {b.id for b in running}
        for build_id in [i for i in self._running if i not in ids]:
            repo, cpus, started = self._running.pop(build_id)
            self._served[repo] = self._served.get(repo, 0.0) + cpus * max(now - started, 0.0)
        for b in running:
            if b.id not in self._running:
                self._running[b.id] = (b.repo, cost[b.id].cpus, b.started_at or now)

    def _room(
        self,
        worker: Worker,
        running: Sequence[Build],
        cost: dict[int, Resources],
        default: Resources,
    ) -> WorkerRoom:
        """``worker``'s capacity and what its builds (running, or sent and not yet claimed) hold."""
        capacity = (
            Resources(cpus=worker.cpus, memory=worker.memory)
            if worker.cpus > 0 and worker.memory > 0
            else Resources(cpus=default.cpus * worker.slots, memory=default.memory * worker.slots)
        )
        holds = [cost[b.id] for b in running if b.claimed_by == worker.name]
        holds += [cost[i] for i, (name, _) in self._assigned.items() if name == worker.name]
        return WorkerRoom(
            name=worker.name,
            capacity=capacity,
            used_cpus=sum(c.cpus for c in holds),
            used_memory=sum(c.memory for c in holds),
            max_builds=worker.slots,
            running=len(holds),
            labels=frozenset(worker.labels),
        )


def _reason(why: str, runs_on: tuple[str, ...]) -> str:
    """The policy's reason as the build shows it; a build no live worker has
    the labels of keeps the words it had before costs existed."""
    if why.startswith("no worker") and why.endswith("is running"):
        return f"{WAITING} with labels: {', '.join(runs_on)}" if runs_on else WAITING
    return f"{WAITING}: {why}"


def send_by_cost(
    placer: CostPlacer,
    runner: Any,
    queued: Sequence[Build],
    live: Sequence[Worker],
    route: Callable[[Build], tuple[str, ...] | None],
) -> list[int]:
    """One round of ``runner`` (a CeleryRunner) when workers declare capacity:
    place, send each placed build to its worker's queue, record why the others
    wait. ``route`` reads a build's runs_on (None: its pipeline cannot be read,
    and the build was ended). Returns the ids sent."""
    store: Store = runner.store
    routed = []
    for build in sorted(queued, key=lambda b: (-b.priority, b.id)):
        runs_on = route(build)
        if runs_on is not None:  # at its commit: its cost is read there, with no rev-parse
            routed.append((runner.routed(build), runs_on))
    running = runner._read(lambda: store.list_builds(status=Status.RUNNING, limit=1000))
    plan = placer.plan(routed, running, live, now=runner.clock(), mono=runner.monotonic())
    sent = []
    for build, worker, queue in plan.sends:
        waited = build.reason and build.reason.startswith(WAITING)
        runner.record_route(build.id, **({"reason": None} if waited else {}))
        runner.broker.send(build.id, queue)
        sent.append(build.id)
        log.info("build_sent", build=build.id, worker=worker, queue=queue)
    for build, _ in routed:
        reason = plan.waiting.get(build.id)
        if reason is not None and build.reason != reason:
            try:  # in one write with what its route learnt
                runner.record_route(build.id, reason=reason)
            except SauCIError:
                log.info("waiting_reason_not_recorded", build=build.id)
            else:
                log.info("build_waiting", build=build.id, reason=reason)
    runner.record_routes()
    return sent


class _ReadOnce:
    """A Source whose ``read_file`` asks git once per (commit, path): the
    dispatcher reads a commit's pipeline for its ``runs_on`` and for its
    ``resources:``, and builds of one commit share both reads."""

    def __init__(self, source: Source, keep: int = 256) -> None:
        self._source = source
        self._keep = keep
        self._texts: OrderedDict[tuple[str, str], str | None] = OrderedDict()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._source, name)

    def read_file(self, sha: str, path: str) -> str | None:
        key = (sha, path)
        if key in self._texts:
            self._texts.move_to_end(key)
            return self._texts[key]
        text = self._source.read_file(sha, path)  # a SourceError is not kept
        self._texts[key] = text
        if len(self._texts) > self._keep:
            self._texts.popitem(last=False)
        return text


def read_once(sources: Callable[[str], Source]) -> Callable[[str], Source]:
    """``sources`` with one :class:`_ReadOnce` per repository, shared by its callers."""
    made: dict[str, Source] = {}

    def source(repo: str) -> Source:
        if repo not in made:
            made[repo] = cast(Source, _ReadOnce(sources(repo)))
        return made[repo]

    return source
