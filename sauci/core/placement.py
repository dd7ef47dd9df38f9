"""Where waiting builds go: fair between repositories, packed by declared cost.

The policy (docs/serve.md, "Placing builds by cost"):

1. **Order**: higher priority first; within one, the repository that has been
   served least (CPU-seconds of declared cost, ``cpus`` x seconds, charged
   by the caller when a build ends, divided by the repository's weight)
   first, then the oldest build. This is weighted fair queueing: a
   repository pushing heavy builds falls behind one pushing light ones, so a
   light build does not wait behind a queue of heavy ones.
2. **Pack**: each build goes to the worker where it fits with the least room
   left (best fit), which keeps whole workers free for heavy builds.
3. **Backfill, bounded**: when the head (the build waiting longest that
   fits no worker's free room) fits nowhere, builds
   behind it that fit are started anyway, so idle room is used, but only
   while the head has waited less than ``hold_after`` seconds. After that the
   worker with the most room is held for the head (nothing else is started
   there), so it runs as soon as that worker drains, unless builds of
   other repositories have waited ``yield_after`` (default ``hold_after``):
   those keep the freed room first, so a heavy build does not fill the last
   worker while light ones queue, but only until the head has waited
   ``starve_after`` seconds; then it holds a worker whatever waits. A heavy
   build is passed over for a bounded time, never starved. Once builds'
   durations are known, when to hold is decided by :mod:`sauci.core.drain`
   instead of by how long builds have waited.
4. **Defer the last free worker** (``defer`` seconds, 0: off): a build that
   would take a whole worker, the last with any room, while no lighter
   build of another repository waits or runs, is not started there in its
   first ``defer`` seconds. Builds of one push, or of pushes a moment apart,
   reach the queue some milliseconds apart; placed as they come, the first
   round sees only the heavy ones and fills every worker with them, and a
   lighter build queued a moment later waits a whole heavy build. Slurm
   can likewise be told not to schedule jobs one by one as they are
   submitted (``SchedulerParameters=defer``). Only that start
   is deferred: a build that leaves room, or takes a worker while another
   still has room, starts at once, so a push's first build is not delayed.

A build no worker could ever hold (more CPUs or memory than the largest
worker's capacity) never blocks the others; it waits with its reason.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import attrs

from sauci.core.backfill import place_reserving
from sauci.core.drain import drain_fits, room_at
from sauci.core.placement_types import (
    Placement,
    WaitingBuild,
    WorkerRoom,
    never_fits,
    why_waits,
)
from sauci.core.reservation import RunningBuild
from sauci.core.resources import Resources

# A build may still start on a worker drained for a heavy build if it is
# expected to end at most this long after the worker would have drained: in
# real time, builds that start together end a few milliseconds apart, and
# leaving a worker's room idle until the last of them ends, to save the heavy
# build those milliseconds, leaves lighter builds queued for a whole round.
SLIP = 0.02

__all__ = ["Placement", "RunningBuild", "WaitingBuild", "WorkerRoom", "place"]


def place(
    queue: Sequence[WaitingBuild],
    workers: Sequence[WorkerRoom],
    *,
    served: Mapping[str, float],
    now: float,
    weights: Mapping[str, float] | None = None,
    hold_after: float = 1.0,
    starve_after: float = 30.0,
    yield_after: float | None = None,
    durations: Mapping[str, float] | None = None,
    running: Sequence[RunningBuild] = (),
    wait_bound: float | None = None,
    arrivals: Mapping[str, float] | None = None,
    reserved: Mapping[int, tuple[str, float]] | None = None,
    reserve: bool = False,
    defer: float = 0.0,
) -> Placement:
    """Decide which of ``queue`` start on which of ``workers`` now.

    ``served``: CPU-seconds of declared cost each repository has started
    (the caller charges ``cost.cpus`` x the build's duration, or an estimate).
    ``hold_after`` and ``starve_after``: the bounds of backfilling, above.
    ``durations``: the expected seconds of each repository's builds
    (:mod:`sauci.core.durations`), ``arrivals`` their rates, and ``running``,
    what holds each worker's room since when: with them, a worker is drained
    for a heavy build when lighter builds of other repositories keep within
    ``wait_bound`` (default ``yield_after``, else ``hold_after``) and more
    rounds of them would not let the next heavy build start earlier
    (:mod:`sauci.core.drain`). Without them the rule above. ``reserve``:
    reservations instead (EASY backfilling, :mod:`sauci.core.reservation`),
    with ``reserved`` the last round's, given back. ``defer``: rule 4.
    """
    bound = wait_bound if wait_bound is not None else (yield_after or hold_after)
    if durations and reserve:
        planned = place_reserving(
            queue,
            workers,
            served=served,
            now=now,
            weights=weights or {},
            starve_after=starve_after,
            durations=durations,
            running=running,
            wait_bound=bound,
            arrivals=arrivals,
            reserved=reserved,
        )
        if planned is not None:
            return planned
    weights = weights or {}
    rooms = {w.name: w for w in workers}
    charge = dict(served)

    def key(b: WaitingBuild) -> tuple[float, float, float, int]:
        share = charge.get(b.repo, 0.0) / weights.get(b.repo, 1.0)
        return (-b.priority, share, b.queued_at, b.id)

    pending = sorted(queue, key=key)
    starts: list[tuple[int, str]] = []
    waiting: dict[int, str] = {}
    held: dict[str, int] = {}  # worker -> the build it drains for
    due: dict[str, float] = {}  # worker -> when it is expected to have drained (INF: not known)
    expected = _Expected(list(running), durations or {}, now, bound, arrivals or {})
    head = _head(pending, list(rooms.values())) if durations else None
    if head is not None:
        # Decided before lighter builds take the room: once draining a worker
        # for the oldest build is fair (it is heavier than others', and they
        # keep room) or it starves, it goes there as soon as it fits.
        able = [r for r in rooms.values() if head.needs <= r.labels and head.cost.fits(r.capacity)]
        room, fair = _drain(head, able, list(rooms.values()), pending, expected)
        if not _heavier(head, pending, expected.running):
            fair = False
        if fair or now - head.queued_at >= starve_after:
            if room.takes(head.cost):
                rooms[room.name] = room.with_build(head.cost)
                starts.append((head.id, room.name))
                expected.started(head, room.name)
                charge[head.repo] = charge.get(head.repo, 0.0) + head.cost.cpus
                pending.remove(head)
                pending.sort(key=key)
            else:
                held[room.name] = head.id
                due[room.name] = expected.room_at(room, head.cost)
    while pending:
        progressed = False
        for index, build in enumerate(pending):
            able = [r for r in rooms.values() if build.needs <= r.labels]
            never = never_fits(build.cost, able, build.needs)
            if never:
                waiting[build.id] = never
                continue
            fits = [
                r
                for r in able
                if r.takes(build.cost)
                and (r.name not in held or expected.ends_by(build, due[r.name] + SLIP))
            ]
            if (
                fits
                and now - build.queued_at < defer
                and not _heavier(build, pending, expected.running)
            ):
                deferred = [r for r in fits if _last_room(r, build.cost, list(rooms.values()))]
                fits = [r for r in fits if r not in deferred]
                if deferred and not fits:
                    waiting[build.id] = (
                        f"it would take {deferred[0].name} whole, the last worker with room:"
                        f" deferred {defer:g} s after it was queued, for lighter builds"
                        " queued with it"
                    )
                    continue
            if fits:
                best = min(fits, key=lambda r: (r.free()[0] - build.cost.cpus, r.name))
                rooms[best.name] = best.with_build(build.cost)
                starts.append((build.id, best.name))
                expected.started(build, best.name)
                charge[build.repo] = charge.get(build.repo, 0.0) + build.cost.cpus
                del pending[index]
                waiting.pop(build.id, None)
                pending.sort(key=key)  # its repository's share grew
                progressed = True
                break
            waiting[build.id] = why_waits(build.cost, able)
            mine = [name for name, owner in held.items() if owner == build.id]
            waited = now - build.queued_at
            others_blocked = any(
                b.repo != build.repo
                and now - b.queued_at >= (hold_after if yield_after is None else yield_after)
                for b in pending
            )
            free = [r for r in able if r.name not in held]
            if not mine and free and build is _oldest_blocked(pending, list(rooms.values())):
                room, fair = _drain(build, free, list(rooms.values()), pending, expected)
                if not _heavier(build, pending, expected.running):
                    fair = None  # no lighter build of another repository to keep room for
                keeps_room = fair is False  # lighter builds would wait too long
                if fair is None:  # or durations not known: by how long builds have waited
                    fair = waited >= hold_after and not others_blocked
                if fair or waited >= starve_after:
                    held[room.name] = build.id
                    due[room.name] = expected.room_at(room, build.cost)
                    mine = [room.name]
                elif keeps_room:
                    waiting[build.id] += (
                        f"; {room.name} is not drained for it yet, so that lighter builds"
                        " of other repositories keep room"
                    )
            if mine:
                waiting[build.id] += f"; {mine[0]} is held for it"
        if not progressed:
            break
    return Placement(starts=tuple(starts), waiting=waiting, held=held)


@attrs.frozen
class _Expected:
    """What rule 3 knows of the builds running: their expected durations."""

    running: list[RunningBuild]  # and those started this round
    durations: Mapping[str, float]
    now: float
    wait_bound: float
    arrivals: Mapping[str, float]

    def room_at(self, room: WorkerRoom, cost: Resources) -> float:
        return room_at(room, cost, self.running, self.durations, self.now)

    def ends_by(self, build: WaitingBuild, at: float) -> bool:
        seconds = self.durations.get(build.repo)
        return seconds is not None and at < math.inf and self.now + seconds <= at

    def started(self, build: WaitingBuild, worker: str) -> None:
        self.running.append(
            RunningBuild(
                id=build.id,
                repo=build.repo,
                worker=worker,
                cost=build.cost,
                started_at=self.now,
                queued_at=build.queued_at,
            )
        )


def _drain(
    build: WaitingBuild,
    able: list[WorkerRoom],
    rooms: list[WorkerRoom],
    pending: list[WaitingBuild],
    expected: _Expected,
) -> tuple[WorkerRoom, bool | None]:
    """The worker to drain for ``build`` and whether that is fair to lighter
    builds (None: not known, without durations): the one expected to have room
    first (:mod:`sauci.core.drain`), else the one with the most room now."""
    if not expected.durations:
        return max(able, key=lambda r: (r.free()[0], r.free()[1], r.name)), None
    e = expected
    room = min(
        able,
        key=lambda r: (room_at(r, build.cost, e.running, e.durations, e.now), -r.free()[0], r.name),
    )
    fair = drain_fits(
        build,
        room,
        rooms,
        pending,
        e.running,
        e.durations,
        now=e.now,
        wait_bound=e.wait_bound,
        arrivals=e.arrivals,
        next_heavy=any(b is not build and b.repo == build.repo for b in pending),
    )
    return room, fair


def _head(pending: list[WaitingBuild], rooms: list[WorkerRoom]) -> WaitingBuild | None:
    """The build waiting longest that some worker could hold."""
    able = [
        b for b in pending if any(b.cost.fits(r.capacity) for r in rooms if b.needs <= r.labels)
    ]
    return min(able, key=lambda b: (b.queued_at, b.id), default=None)


def _heavier(
    head: WaitingBuild, pending: list[WaitingBuild], running: Sequence[RunningBuild]
) -> bool:
    """Whether ``head`` is heavier than a build of another repository, waiting
    or running: one whose worker's drain lighter builds need protecting from."""
    others = [(b.repo, b.cost) for b in pending] + [(r.repo, r.cost) for r in running]
    return any(o != head.repo and c.lighter_than(head.cost) for o, c in others)


def _last_room(room: WorkerRoom, cost: Resources, rooms: list[WorkerRoom]) -> bool:
    """Whether ``cost`` would take ``room`` whole (it is empty, and has no room
    left beside it) while every other worker is full: rule 4. Not a build
    within one slot's share (capacity / max_builds, what a build that declares
    nothing costs): on a worker of one slot every build takes it whole, and
    none is lighter."""
    if room.running or room.used_cpus > 0 or not room.with_build(cost).full():
        return False
    if room.max_builds:
        share_cpus = room.capacity.cpus / room.max_builds
        if (
            cost.cpus <= share_cpus + 1e-9
            and cost.memory <= room.capacity.memory // room.max_builds
        ):
            return False
    return all(r.full() for r in rooms if r.name != room.name)


def _oldest_blocked(pending: list[WaitingBuild], rooms: list[WorkerRoom]) -> WaitingBuild | None:
    """The build waiting longest that some worker could hold but none can now:
    the one a held worker protects from starving."""
    blocked = []
    for b in pending:
        able = [r for r in rooms if b.needs <= r.labels]
        if any(b.cost.fits(r.capacity) for r in able) and not any(r.takes(b.cost) for r in able):
            blocked.append(b)
    return min(blocked, key=lambda b: (b.queued_at, b.id), default=None)
