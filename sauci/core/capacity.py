"""The in-process server's claims by declared cost: which queued builds fit
this machine's capacity now, by the policy of :mod:`sauci.core.placement`.

A build's cost is read from its pipeline at its commit before it is claimed
(its ``resources:``, else the largest step's, else the default); a pipeline
that cannot be read costs the default, and its runner reports the problem
when it runs it. The server's default is one slot's share of its capacity
(capacity / ``max_builds``), so builds that declare nothing run
``max_builds`` at once, as they did before costs existed.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from sauci._logging import get_logger
from sauci.core.durations import DurationHistory, Forecast
from sauci.core.models import Build, Status
from sauci.core.placement import RunningBuild, WaitingBuild, WorkerRoom, place
from sauci.core.resources import DEFAULT_RESOURCES, Resources
from sauci.exceptions import SauCIError
from sauci.typing import Source, Store

__all__ = [
    "CapacityClaims",
    "capacity_claims",
    "cost_from_source",
    "declared_costs",
    "slot_share",
]

log = get_logger(__name__)

_FULL_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
WAITING = "waiting:"  # prefix of the reason a queued build waits, for the page and CLI


def cost_from_source(
    source_of: Callable[[str], Source], default: Resources = DEFAULT_RESOURCES
) -> Callable[[Sequence[Build]], list[Resources]]:
    """The declared costs of some builds, read from ``.sauci.yml`` at their
    commits; ``default`` for a build that declares none or cannot be read."""
    declared = declared_costs(source_of)

    def costs(builds: Sequence[Build]) -> list[Resources]:
        return [default if cost is None else cost for cost in declared(builds)]

    return costs


def declared_costs(
    source_of: Callable[[str], Source],
) -> Callable[[Sequence[Build]], list[Resources | None]]:
    """What some builds declare they cost (the pipeline's ``resources:``, else
    the largest step's), read from ``.sauci.yml`` at their commits; None for a
    build that declares none or cannot be read.

    A commit's cost is read once (a commit does not change); a ref is
    resolved once per call, so a queue of builds of one branch costs one
    ``rev-parse`` and one read, not one of each per build."""
    sources: dict[str, Source] = {}  # one per repository: finding its root costs git calls
    by_commit: dict[tuple[str, str], Resources | None] = {}

    def read(source: Source, sha: str) -> Resources | None:
        from sauci.core.pipeline import FILENAME, parse_pipeline

        text = source.read_file(sha, FILENAME)
        if text is None:
            return None
        pipeline = parse_pipeline(text, FILENAME)
        if pipeline.resources is not None:
            return pipeline.resources
        steps = [s.resources for s in pipeline.steps if s.resources is not None]
        return max(steps, key=lambda r: (r.cpus, r.memory), default=None)

    def costs(builds: Sequence[Build]) -> list[Resources | None]:
        resolved: dict[tuple[str, str], str] = {}
        found: list[Resources | None] = []
        for build in builds:
            try:
                source = sources.get(build.repo) or sources.setdefault(
                    build.repo, source_of(build.repo)
                )
                wanted = (build.repo, build.sha or build.ref or "HEAD")
                if wanted not in resolved:
                    full = build.sha is not None and _FULL_SHA.fullmatch(build.sha)
                    resolved[wanted] = build.sha if full else source.resolve(wanted[1])
                commit = (build.repo, resolved[wanted])
                if commit not in by_commit:
                    by_commit[commit] = read(source, commit[1])
                found.append(by_commit[commit])
            except (SauCIError, ValueError):
                found.append(None)
        return found

    return costs


class CapacityClaims:
    """Claims for one in-process runner of ``capacity``, at most ``max_builds`` at once."""

    def __init__(
        self,
        *,
        store: Store,
        name: str,
        capacity: Resources,
        max_builds: int,
        cost_of: Callable[[Sequence[Build]], list[Resources]],
        hold_after: float = 1.0,
        starve_after: float = 30.0,
        clock: Callable[[], float] = time.time,
        history: DurationHistory | None = None,
        note_every: float = 0.25,
        wait_bound: float | None = None,
    ) -> None:
        self.store = store
        self.name = name
        self.capacity = capacity
        self.max_builds = max_builds
        self.cost_of = cost_of
        self.hold_after = hold_after
        self.starve_after = starve_after
        self.clock = clock
        self._costs: dict[int, Resources] = {}
        self._running: dict[int, tuple[str, Resources, float]] = {}  # id -> repo, cost, start
        self._served: dict[str, float] = {}
        self._lock = threading.Lock()
        self.history = history  # expected durations: when a heavy build may drain room
        self.wait_bound = wait_bound  # a lighter build's longest expected wait (drain_wait)
        self._reserved: dict[int, tuple[str, float]] = {}
        # The queue as the last claim left it (what a claim at a slot's end plans from).
        self._queued: list[Build] | None = None
        self._stale = True
        # While every slot is taken nothing can start: the queue is read (for
        # why builds wait) at most every ``note_every`` s, not in every round
        # a burst of queued builds makes while the first ones start.
        self.note_every = note_every
        self._quiet_until = 0.0

    def room(self) -> WorkerRoom:
        """This runner's capacity and what its running builds reserve of it."""
        with self._lock:
            running = list(self._running.values())
        return WorkerRoom(
            name=self.name,
            capacity=self.capacity,
            used_cpus=sum(cost.cpus for _, cost, _ in running),
            used_memory=sum(cost.memory for _, cost, _ in running),
            max_builds=self.max_builds,
            running=len(running),
        )

    def stale(self) -> None:
        """Builds were queued or cancelled since the last read of the queue."""
        self._stale = True

    def claim(
        self, *, start: Callable[[Build], None] | None = None, fresh: bool = True
    ) -> list[Build]:
        """Claim the queued builds that fit now; note why the others wait.

        ``start`` is handed each build as soon as it is claimed, before the
        waiting ones' reasons are written. ``fresh`` False (a slot just freed):
        plan from the queue the last claim read, less what was claimed since,
        unless :meth:`stale` was called; a build that has left the queue
        meanwhile is not claimed (the store's claim is the check), and the
        server's rounds read the queue anew and write why builds wait. While
        every slot is taken nothing can start, and that is noted at most
        every ``note_every`` seconds.
        """
        if self._full() and time.monotonic() < self._quiet_until:
            return []
        queued = self._queued if not fresh and not self._stale else None
        fresh = queued is None
        if queued is None:
            self._stale = False
            queued = self.store.list_builds(status=Status.QUEUED, limit=200)
            ids = {b.id for b in queued}
            for gone in [i for i in self._costs if i not in ids]:
                del self._costs[gone]
        self._queued = queued = list(queued)
        new = [build for build in queued if build.id not in self._costs]
        if new:
            self._costs.update(zip([b.id for b in new], self.cost_of(new), strict=True))
        waiting = [
            WaitingBuild(
                id=build.id,
                repo=build.repo,
                cost=self._costs[build.id],
                queued_at=build.queued_at,
                priority=build.priority,
            )
            for build in queued
        ]
        with self._lock:
            served = dict(self._served)
            running = [
                RunningBuild(id=i, repo=repo, worker=self.name, cost=cost, started_at=start)
                for i, (repo, cost, start) in self._running.items()
            ]
        repos = {b.repo for b in queued} | {r.repo for r in running}
        forecast = self.history.forecast(repos) if self.history else Forecast()
        plan = place(
            waiting,
            [self.room()],
            served=served,
            now=self.clock(),
            hold_after=self.hold_after,
            starve_after=self.starve_after,
            durations=forecast.durations,
            arrivals=forecast.arrivals,
            running=running,
            reserved=self._reserved,
            wait_bound=self.wait_bound,
        )
        self._reserved = dict(plan.reserved)
        by_id = {b.id: b for b in queued}
        claimed = []
        for build_id, _ in plan.starts:
            del by_id[build_id]  # claimed here, or gone
            got = self.store.claim_build(self.name, build_id=build_id)
            if got is None:
                continue  # cancelled or taken meanwhile
            cost = self._costs.pop(build_id)
            if got.reason and got.reason.startswith(WAITING):
                got = self.store.update_build(build_id, reason=None)
            with self._lock:
                self._running[build_id] = (got.repo, cost, self.clock())
            claimed.append(got)
            if start is not None:
                start(got)
        # Only from a fresh read: a build cancelled since the last one keeps its reason.
        for build_id, why in plan.waiting.items() if fresh else ():
            reason = f"{WAITING} {why}"
            if by_id[build_id].reason != reason:
                try:
                    by_id[build_id] = self.store.update_build(build_id, reason=reason)
                except SauCIError:
                    log.info("waiting_reason_not_recorded", build=build_id)
        self._queued = list(by_id.values())
        if self._full():
            self._quiet_until = time.monotonic() + self.note_every
        return claimed

    def _full(self) -> bool:
        """Every slot (``max_builds``) is taken."""
        with self._lock:
            return len(self._running) >= self.max_builds

    def ended(self, build_id: int) -> None:
        """Free a build's room and charge its repository the CPU-seconds it held."""
        with self._lock:
            found = self._running.pop(build_id, None)
            if found is not None:
                repo, cost, started = found
                seconds = max(self.clock() - started, 0.0)
                self._served[repo] = self._served.get(repo, 0.0) + cost.cpus * seconds
        if found is not None and self.history is not None:
            self.history.ended(found[0])  # its expected duration is read again


def capacity_claims(
    store: Store,
    name: str,
    options: Any,
    sources: Callable[[str], Source],
    wait_bound: float | None = None,
) -> CapacityClaims:
    """The server's claims: ``options.capacity`` (None: this machine's),
    ``options.max_builds`` as a cap on the count; a build that declares no
    cost takes one slot's share of the capacity; builds' expected durations
    learnt from the store (:mod:`sauci.core.drain` decides when a heavy build
    may have the machine, lighter builds waiting at most ``wait_bound``)."""
    from sauci.core.resources import machine_capacity

    capacity = getattr(options, "capacity", None) or machine_capacity()
    return CapacityClaims(
        store=store,
        name=name,
        capacity=capacity,
        max_builds=options.max_builds,
        cost_of=cost_from_source(sources, slot_share(capacity, options.max_builds)),
        history=DurationHistory(store),
        wait_bound=wait_bound,
    )


def slot_share(capacity: Resources, max_builds: int) -> Resources:
    """What a build that declares nothing costs: ``capacity / max_builds``."""
    share = max(max_builds, 1)
    return Resources(cpus=capacity.cpus / share, memory=max(capacity.memory // share, 1))
