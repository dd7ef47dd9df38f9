"""When a worker may be drained for a heavy build, from builds' expected
durations: the hold of :func:`sauci.core.placement.place`, rule 3, once
durations are known (:mod:`sauci.core.durations`).

A heavy build that needs a whole worker shuts lighter builds out of it for
its whole run. Draining a worker for it (starting nothing else there, so it
starts as soon as that worker's builds end) is therefore fair to the lighter
builds of other repositories only while some other worker is expected to
have room for them soon enough: the lighter builds waiting now, served
oldest first as that room comes, and any that come from now on, all start
within ``wait_bound`` of being queued. The check is closed-form, from the
expected ends of the builds running (a repository's builds take about as
long as its last ones did): no play-forward, a few microseconds a round.

Why this and not reservations ahead of time (EASY backfilling, still
available with ``place(..., reserve=True)``): a reservation is a time, and
the time a heavy build can start without shutting lighter ones out depends
on how many of them wait by then, which a reservation made earlier can only
guess (it cost milliseconds of play-forward a round to guess well, and, in
real time, builds ending a few milliseconds late turned a guessed time into
a whole extra round of lighter builds). Deciding when the drain is due, each
round, from the builds actually waiting, asks nothing ahead.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping, Sequence

from sauci.core.placement_types import WaitingBuild, WorkerRoom
from sauci.core.reservation import RunningBuild
from sauci.core.resources import Resources

__all__ = ["drain_fits", "room_at"]

INF = math.inf
EPS = 1e-6


def room_at(
    room: WorkerRoom,
    cost: Resources,
    running: Sequence[RunningBuild],
    durations: Mapping[str, float],
    now: float,
) -> float:
    """When ``room`` is expected to have room for ``cost`` (now, or the expected
    end of a build running there; INF: not known, or never)."""
    if not cost.fits(room.capacity):
        return INF
    if room.takes(cost):
        return now
    cpus, memory = room.free()
    ends = []
    for run in running:
        if run.worker == room.name:
            seconds = durations.get(run.repo)
            # A build past its expected end is expected to end any moment.
            end = INF if seconds is None else max(run.started_at + seconds, now)
            ends.append((end, run.cost))
    for end, freed in sorted(ends, key=lambda e: e[0]):
        if end == INF:
            return INF
        cpus, memory = cpus + freed.cpus, memory + freed.memory
        if cost.cpus <= cpus + 1e-9 and cost.memory <= memory:
            return end
    return INF


def drain_fits(
    head: WaitingBuild,
    target: WorkerRoom,
    rooms: Sequence[WorkerRoom],
    pending: Sequence[WaitingBuild],
    running: Sequence[RunningBuild],
    durations: Mapping[str, float],
    *,
    now: float,
    wait_bound: float,
    arrivals: Mapping[str, float] | None = None,
    next_heavy: bool = False,
) -> bool | None:
    """Whether to drain ``target`` for ``head`` now: lighter builds of other
    repositories keep within ``wait_bound`` (the waiting ones, served oldest
    first as the first other worker is expected to have room, and one queued
    from now on), and, when another build of ``head``'s repository waits
    (``next_heavy``) and lighter builds come at known ``arrivals`` rates,
    draining a round or more later would not let that next one start
    earlier. None when it cannot be known (a duration needed is not known)."""
    arrivals = arrivals or {}
    costs = [(b.repo, b.cost) for b in pending] + [(r.repo, r.cost) for r in running]
    lighter = [(r, c) for r, c in costs if r != head.repo and c.lighter_than(head.cost)]
    if not lighter:
        return True
    heavy_seconds = durations.get(head.repo)
    if heavy_seconds is None:
        return None
    smallest = min((c for _, c in lighter), key=lambda c: (c.cpus, c.memory))
    light_seconds = max((durations.get(r, INF) for r, c in lighter if c == smallest), default=INF)
    if light_seconds == INF:
        return None
    # When and how many of the smallest lighter builds the other workers (and
    # the target, once the head has run there) are expected to take.
    start = room_at(target, head.cost, running, durations, now)
    if start == INF:
        return None
    openings: list[tuple[float, int]] = []
    for room in rooms:
        if room.name == target.name:
            beside = smallest.times_in(room.capacity.minus(head.cost))
            openings.append((now if beside else start + heavy_seconds, max(beside, 1)))
            continue
        at = room_at(room, smallest, running, durations, now)
        if at < INF:
            whole = (room.capacity.cpus, room.capacity.memory)
            openings.append((at, max(smallest.times_in(whole), 1)))
    if not openings:
        return None
    first, slots = min(openings)
    if first - now > wait_bound + EPS:  # one queued from now on waits longer
        return False
    queued = sorted(
        b.queued_at
        for b in pending
        if b.repo != head.repo and b.cost == smallest and b.id != head.id
    )
    for k, at in enumerate(queued):
        if first + (k // slots) * light_seconds - at > wait_bound + EPS:
            return False
    rate = sum(arrivals.get(r, 0.0) for r in {r for r, c in lighter if c == smallest})
    if next_heavy and rate > 0:
        # Not yet if more rounds of lighter builds here first let the next heavy
        # build start earlier: draining early leaves the worker that frees next
        # a backlog to serve before the next heavy build can have it.
        mine = smallest.times_in((target.capacity.cpus, target.capacity.memory))
        line = _Line(queued, rate, now, light_seconds, wait_bound)
        at_once = line.next_start(start, heavy_seconds, first, slots, None)
        k = 1
        while start + k * light_seconds <= first + EPS:
            later = line.next_start(
                start + k * light_seconds, heavy_seconds, first, slots, (start, mine, k)
            )
            if later < at_once - EPS:
                return False
            k += 1
    return True


class _Line:
    """The lighter builds' queue played forward in closed form: the waiting
    ones, then one every 1/``rate`` s, served oldest first in rounds of a
    build's duration; for comparing two drain times of a heavy build."""

    def __init__(
        self, queued: list[float], rate: float, now: float, seconds: float, bound: float
    ) -> None:
        self.queued, self.rate, self.now = queued, rate, now
        self.seconds, self.bound = seconds, bound

    def next_start(
        self,
        start: float,
        heavy: float,
        opens: float,
        slots: int,
        before: tuple[float, int, int] | None,
    ) -> float:
        """When a next heavy build could start on the worker that opens at
        ``opens`` with ``slots``, if this one starts at ``start`` and runs
        ``heavy`` s; ``before``: the target's rounds (from, slots, how many) before it."""
        limit = start + heavy + 2 * self.bound
        arrivals: list[float] = []
        at = max(self.queued[-1] if self.queued else self.now, self.now)
        while at + 1 / self.rate <= limit and len(arrivals) < 1000:
            at += 1 / self.rate
            arrivals.append(at)
        line = deque(self.queued + arrivals)
        if before is not None:
            t, n, rounds = before
            for r in range(rounds):
                for _ in range(n):
                    if line and line[0] <= t + r * self.seconds + EPS:
                        line.popleft()
        threshold = start + heavy - self.bound  # its end, less the bound
        t = opens
        while t <= limit:
            for _ in range(slots):
                if line and line[0] <= t + EPS:
                    line.popleft()
            if t >= threshold - EPS and (not line or line[0] >= threshold - EPS):
                return t + self.seconds
            t += self.seconds
        return INF
