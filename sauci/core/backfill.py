"""``place`` by reservation: the placement policy when builds' durations are
expected (:mod:`sauci.core.reservation` says how and why).

Each round: the head (the build waiting longest that some worker could
ever hold) is reserved a worker and a time; then the builds are visited in
the fair order of :func:`sauci.core.placement.place` (priority, least
served repository, oldest) and each starts on the best-fitting worker where
it fits now, does not shut lighter builds of other repositories out for
longer than ``wait_bound``, and does not delay the reservation. The head
starts when its time has come.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sauci.core.lighter_waits import heavier_than_some, lighter_waits, waits_ok
from sauci.core.placement_types import (
    Placement,
    WaitingBuild,
    WorkerRoom,
    never_fits,
    why_waits,
)
from sauci.core.reservation import EPS, INF, Lighter, Outlook, RunningBuild
from sauci.core.resources import Resources

__all__ = ["place_reserving"]

# A reservation this close is due: its head starts now if its worker has
# room, rather than a round later (a round is often later than asked).
DUE = 0.02


def place_reserving(
    queue: Sequence[WaitingBuild],
    workers: Sequence[WorkerRoom],
    *,
    served: Mapping[str, float],
    now: float,
    weights: Mapping[str, float],
    starve_after: float,
    durations: Mapping[str, float],
    running: Sequence[RunningBuild],
    wait_bound: float,
    arrivals: Mapping[str, float] | None = None,
    reserved: Mapping[int, tuple[str, float]] | None = None,
) -> Placement | None:
    """``place`` by reservation; None when the head's reservation cannot be
    known (no expected end on any worker it fits): the caller then places
    without."""
    rooms = {w.name: w for w in workers}
    charge = dict(served)
    outlook = Outlook(
        {w.name: w.free() for w in workers},
        {w.name: w.labels for w in workers},
        running,
        durations,
        now=now,
        wait_bound=wait_bound,
        arrivals=arrivals,
    )

    def key(b: WaitingBuild) -> tuple[float, float, float, int]:
        share = charge.get(b.repo, 0.0) / weights.get(b.repo, 1.0)
        return (-b.priority, share, b.queued_at, b.id)

    pending = sorted(queue, key=key)
    # The builds that may need room: running and waiting, by id.
    others: dict[tuple[str, int], Lighter] = {
        ("run", r.id): Lighter(r.repo, r.cost, frozenset(), r.queued_at, False) for r in running
    }
    others.update(
        {("wait", b.id): Lighter(b.repo, b.cost, b.needs, b.queued_at, True) for b in pending}
    )

    def able(b: WaitingBuild) -> list[WorkerRoom]:
        return [r for r in rooms.values() if b.needs <= r.labels]

    def allowed(b: WaitingBuild, room: WorkerRoom) -> bool:
        if not room.takes(b.cost):
            return False
        lighter = list(others.values())
        if not heavier_than_some(b.cost, b.repo, lighter):
            baseline: list[float] = []
        else:
            baseline = lighter_waits(outlook, b.cost, b.repo, lighter)
        outlook.started(room.name, b.repo, b.cost)
        try:
            return not outlook.overcommitted(room.name) and waits_ok(
                outlook, b.cost, b.repo, lighter, baseline
            )
        finally:
            outlook.unstart(room.name, room.free())

    def holders(b: WaitingBuild) -> list[str]:
        return [r.name for r in able(b) if b.cost.fits(r.capacity)]

    starts: list[tuple[int, str]] = []
    waiting: dict[int, str] = {}
    wake: float | None = None
    plan: tuple[str, float] | None = None
    head: WaitingBuild | None = None
    while pending:
        outlook.unplan()
        by_age = sorted(
            (b for b in pending if not never_fits(b.cost, able(b), b.needs)),
            key=lambda b: (b.queued_at, b.id),
        )
        if not by_age:
            head, plan = None, None
        elif head is not by_age[0] or plan is None:  # a reservation is kept while its head waits
            head = by_age[0]
            plan = (reserved or {}).get(head.id)
            if plan is None or not _due(plan, head, rooms, now):
                lighter = list(others.values())
                nxt = [b for b in by_age[1:] if heavier_than_some(b.cost, b.repo, lighter)][:1]
                plan = reserve(
                    outlook,
                    [(b.cost, b.repo, holders(b)) for b in [head, *nxt]],
                    lighter,
                    starving=now - head.queued_at >= starve_after,
                    near=max(
                        (durations.get(b.repo, INF) for b in pending if lighter_than(b, head)),
                        default=0.0,
                    ),
                )
                if plan is None:
                    return None
        if head is not None and plan is not None:
            outlook.plan(plan[0], plan[1], head.repo, head.cost)
        progressed = False
        for index, build in enumerate(pending):
            never = never_fits(build.cost, able(build), build.needs)
            if never:
                waiting[build.id] = never
                continue
            if build is head:
                assert plan is not None
                due = plan[1] <= now + DUE and rooms[plan[0]].takes(build.cost)
                fits = [rooms[plan[0]]] if due else []
            else:
                fits = [r for r in able(build) if allowed(build, r)]
            if fits:
                best = min(fits, key=lambda r: (r.free()[0] - build.cost.cpus, r.name))
                rooms[best.name] = best.with_build(build.cost)
                outlook.unplan()
                outlook.started(best.name, build.repo, build.cost)
                starts.append((build.id, best.name))
                charge[build.repo] = charge.get(build.repo, 0.0) + build.cost.cpus
                del others["wait", build.id]
                others["run", build.id] = Lighter(
                    build.repo, build.cost, frozenset(), build.queued_at, False
                )
                del pending[index]
                waiting.pop(build.id, None)
                pending.sort(key=key)
                if build is head:
                    head, plan = None, None
                    if pending:  # start it at once; the next head is reserved next round
                        return Placement(starts=tuple(starts), waiting=waiting, wake_at=now)
                progressed = True
                break
            waiting[build.id] = why_waits(build.cost, able(build))
            if build is head and plan is not None:
                waiting[build.id] += (
                    f"; {plan[0]} is reserved for it in {max(plan[1] - now, 0):.1f} s"
                )
                wake = plan[1]
            elif any(r.takes(build.cost) for r in able(build)):
                waiting[build.id] = (
                    "held back so that lighter builds of other repositories keep room"
                )
        if not progressed:
            break
    kept = {head.id: plan} if head is not None and plan is not None else {}
    return Placement(starts=tuple(starts), waiting=waiting, wake_at=wake, reserved=kept)


def lighter_than(build: WaitingBuild, head: WaitingBuild) -> bool:
    return build.repo != head.repo and heavier_than_some(
        head.cost, head.repo, [Lighter(build.repo, build.cost, build.needs, None, True)]
    )


def _due(
    kept: tuple[str, float], head: WaitingBuild, rooms: Mapping[str, WorkerRoom], now: float
) -> bool:
    """Whether the last round's reservation is due and its worker has room: then
    the head starts without the reservation being made again."""
    worker, at = kept
    return at <= now + DUE and worker in rooms and rooms[worker].takes(head.cost)


def reserve(
    outlook: Outlook,
    queue: Sequence[tuple[Resources, str, Sequence[str]]],
    lighter: Sequence[Lighter],
    *,
    starving: bool,
    near: float = INF,
) -> tuple[str, float] | None:
    """The worker and time for the first of ``queue`` (cost, repository, the
    workers that could hold it): the earliest at which it fits and (unless
    ``starving``) lighter builds keep room, or up to ``wait_bound`` later if
    that lets the second start earlier. None when no worker's end is known.

    While that earliest time is more than ``near`` seconds away (longer than
    any build that could start now would run), it is returned as it is: what
    starts now ends before it, and the choice is made when it comes near."""
    cost, repo, workers = queue[0]
    fits = {w: outlook.fit_time(w, cost) for w in workers}
    fits = {w: at for w, at in fits.items() if at < INF}
    if not fits:
        return None
    if starving or not heavier_than_some(cost, repo, lighter):
        at, _, worker = min((at, outlook.free_at(w, at)[0], w) for w, at in fits.items())
        return worker, at
    times = {w: _times(outlook, at, lighter) for w, at in fits.items()}
    base = lighter_waits(outlook, cost, repo, lighter)
    firsts = {w: _first_ok(outlook, queue[0], w, times[w], lighter, base) for w in fits}
    found = {w: at for w, at in firsts.items() if at is not None}
    if not found:  # none keeps room: the latest considered, when the others have drained
        at, worker = max((ts[-1], w) for w, ts in times.items())
        return worker, at
    earliest = min(found.values())
    if earliest > outlook.now + near:
        return min((at, w) for w, at in found.items())[::-1]
    best: tuple[float, float, float, str] | None = None
    for worker, first in found.items():
        for at in times[worker]:
            if at < first or at > earliest + outlook.wait_bound + EPS:
                continue
            outlook.plan(worker, at, repo, cost)
            try:
                if at != first and not waits_ok(outlook, cost, repo, lighter, base):
                    continue
                second = _second(outlook, queue[1:], lighter, at) if len(queue) > 1 else at
                left = outlook.free_at(worker, at)[0]  # best fit among equals
                if best is None or (second, at, left, worker) < best:
                    best = (second, at, left, worker)
            finally:
                outlook.unplan(len(outlook.planned) - 1)
    assert best is not None
    return best[3], best[1]


def _second(
    outlook: Outlook,
    queue: Sequence[tuple[Resources, str, Sequence[str]]],
    lighter: Sequence[Lighter],
    not_before: float,
) -> float:
    """The earliest the second of the queue can start, not before the first."""
    cost, repo, workers = queue[0]
    found = INF
    base = lighter_waits(outlook, cost, repo, lighter)
    for worker in workers:
        fit = outlook.fit_time(worker, cost)
        if fit < INF:
            times = _times(outlook, max(fit, not_before), lighter)
            at = _first_ok(outlook, queue[0], worker, times, lighter, base)
            found = min(found, INF if at is None else at)
    return found


def _first_ok(
    outlook: Outlook,
    build: tuple[Resources, str, Sequence[str]],
    worker: str,
    times: Sequence[float],
    lighter: Sequence[Lighter],
    base: Sequence[float],
) -> float | None:
    """The first of ``times`` at which ``build`` on ``worker`` keeps room for
    lighter builds, searched as if a later time kept at least as much room."""
    cost, repo, _ = build

    def ok(at: float) -> bool:
        outlook.plan(worker, at, repo, cost)
        try:
            return waits_ok(outlook, cost, repo, lighter, base)
        finally:
            outlook.unplan(len(outlook.planned) - 1)

    # Galloping: 0, 1, 3, 7, ... then bisection in the last stretch.
    low, high, stride = 0, 0, 1
    while not ok(times[high]):
        if high == len(times) - 1:
            return None
        low, high = high + 1, min(high + stride, len(times) - 1)
        stride *= 2
    while low < high:  # times[high] is known to keep room
        middle = (low + high) // 2
        if ok(times[middle]):
            high = middle
        else:
            low = middle + 1
    return times[high]


def _times(outlook: Outlook, fit: float, lighter: Sequence[Lighter]) -> list[float]:
    """Times to try for a reservation from ``fit`` on: ``fit``, the known ends,
    and steps of half the lighter builds' duration up to past the horizon."""
    steps = [outlook.durations[x.repo] for x in lighter if x.repo in outlook.durations]
    step = min(steps, default=0.0)
    times = {fit}
    times.update(u.end for w in outlook.uses for u in outlook.uses_of(w) if fit < u.end < INF)
    if step > 0:
        last = max(outlook.horizon(), fit) + outlook.wait_bound
        times.update(fit + step * k for k in range(1, int((last - fit) / step) + 2))
    return sorted(times)
