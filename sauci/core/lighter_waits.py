"""Whether lighter builds keep room: the check behind reservations
(:mod:`sauci.core.reservation`).

Given what runs and what is reserved (an :class:`~sauci.core.reservation.Outlook`),
the lighter builds of other repositories than a heavy build's are played
forward: the waiting ones, then those expected to come at each
repository's rate of builds (from history: none, none expected),
each started, oldest first, as soon as some worker has room for it for its
expected duration. The answer is whether every one starts within
``wait_bound`` of being queued, until every known build has ended.
"""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Sequence

from sauci.core.reservation import EPS, INF, Lighter, Outlook
from sauci.core.resources import Resources

__all__ = ["heavier_than_some", "lighter_waits", "waits_ok"]


def waits_ok(
    outlook: Outlook,
    heavy: Resources,
    repo: str,
    lighter: Sequence[Lighter],
    baseline: Sequence[float] | None = None,
) -> bool:
    """Whether the builds of ``lighter`` of other repositories than ``repo``
    and lighter than ``heavy`` start within ``wait_bound``, or no later than
    in ``baseline`` (their waits, oldest first, without the heavy build: one
    that would wait longer anyway is not held against it). True when it
    cannot be known (a duration unknown)."""
    return _play(outlook, heavy, repo, lighter, baseline) is not None


def lighter_waits(
    outlook: Outlook, heavy: Resources, repo: str, lighter: Sequence[Lighter]
) -> list[float]:
    """The expected waits of the lighter builds, oldest first ([] when not known)."""
    return _play(outlook, heavy, repo, lighter, None, judge=False) or []


def _play(
    outlook: Outlook,
    heavy: Resources,
    repo: str,
    lighter: Sequence[Lighter],
    baseline: Sequence[float] | None,
    *,
    judge: bool = True,
) -> list[float] | None:
    """Play the lighter builds forward; their waits, or None at the first that
    waits too long (when ``judge``)."""
    others = [x for x in lighter if x.repo != repo and x.cost.lighter_than(heavy)]
    if not others or outlook.durations.get(repo) is None or not outlook.known():
        return []
    smallest = min(others, key=lambda x: (x.cost.cpus, x.cost.memory))
    cost, needs = smallest.cost, smallest.needs
    seconds = max(outlook.durations.get(x.repo, INF) for x in others if x.cost == cost)
    if seconds == INF:
        return []
    queue = deque(sorted(x.queued_at for x in others if x.waiting and x.queued_at is not None))
    coming = deque(_coming(outlook, others))
    horizon = outlook.horizon()
    rooms = {w: _Slots(outlook, w, cost) for w in outlook.workers(needs)}
    ours: dict[str, deque[float]] = {w: deque() for w in rooms}  # ends of the builds played
    changes = sorted({t for r in rooms.values() for t in r.times if t > outlook.now})
    base = list(baseline or ())
    waits: list[float] = []

    def too_long(wait: float) -> bool:
        if not judge or wait <= outlook.wait_bound + EPS:
            return False
        index = len(waits)
        return wait > (base[index] if index < len(base) else 0.0) + EPS

    t = outlook.now
    while True:
        while coming and coming[0] <= t + EPS:
            queue.append(coming.popleft())
        for worker, slots in rooms.items():
            mine = ours[worker]
            while mine and mine[0] <= t + EPS:
                mine.popleft()
            if not queue:
                continue
            for _ in range(min(slots.at(t, seconds) - len(mine), len(queue))):
                wait = t - queue.popleft()
                if too_long(wait):
                    return None
                waits.append(wait)
                mine.append(t + seconds)
        if queue and too_long(t - queue[0]):
            return None
        if t >= horizon and not queue:
            return waits
        # Room grows only where a build ends; builds come when they come.
        nxt = INF
        change = bisect.bisect_right(changes, t + EPS)
        if change < len(changes):
            nxt = changes[change]
        if coming:
            nxt = min(nxt, coming[0])
        for mine in ours.values():
            if mine:
                nxt = min(nxt, mine[0])
        if nxt == INF:
            return waits if not queue else None
        t = nxt


class _Slots:
    """How many builds of one cost fit on a worker over time."""

    def __init__(self, outlook: Outlook, worker: str, cost: Resources) -> None:
        uses = outlook.uses_of(worker)
        times = {outlook.now}
        times.update(u.end for u in uses if outlook.now < u.end < INF)
        times.update(u.start for u in uses if u.planned and outlook.now < u.start < INF)
        self.times = sorted(times)
        self.counts = [cost.times_in(outlook.free_at(worker, t)) for t in self.times]

    def at(self, t: float, seconds: float) -> int:
        """How many can start at ``t`` and run ``seconds``."""
        i = max(bisect.bisect_right(self.times, t + EPS) - 1, 0)
        fewest = self.counts[i]
        for j in range(i + 1, len(self.times)):
            if self.times[j] >= t + seconds - EPS:
                break
            fewest = min(fewest, self.counts[j])
        return fewest


def heavier_than_some(cost: Resources, repo: str, lighter: Sequence[Lighter]) -> bool:
    """Whether a build of ``cost`` is heavier than a build of another repository."""
    return any(x.repo != repo and x.cost.lighter_than(cost) for x in lighter)


def _coming(outlook: Outlook, others: Sequence[Lighter]) -> list[float]:
    """When lighter builds are expected to be queued, up to the horizon."""
    horizon = outlook.horizon()
    times: list[float] = []
    for repo in {x.repo for x in others}:
        mine = [x.queued_at for x in others if x.repo == repo and x.queued_at is not None]
        rate = outlook.arrivals.get(repo)  # from history only: a burst in sight is no rate
        if not rate or rate <= 0:
            continue
        at = max(mine, default=outlook.now) + 1 / rate
        while at <= horizon and len(times) < 10_000:
            if at > outlook.now:
                times.append(at)
            at += 1 / rate
    return sorted(times)
