"""Properties of placement by reservation, over generated queues, workers,
running builds and histories: nothing is overcommitted, a reservation is
honoured by what starts beside it, and a head past ``starve_after`` that fits
is started."""

from __future__ import annotations

import math

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st

from sauci.core.placement import RunningBuild, WaitingBuild, WorkerRoom, place
from sauci.core.reservation import Outlook
from sauci.core.resources import Resources

GIB = 2**30
COSTS = [
    Resources(cpus=0.5, memory=GIB // 4),
    Resources(cpus=1, memory=GIB),
    Resources(cpus=2, memory=GIB),
    Resources(cpus=4, memory=2 * GIB),
]
REPOS = ["a", "b", "c"]
NOW = 10.0


@st.composite
def situations(draw: st.DrawFn, *, all_known: bool = False) -> dict:  # type: ignore[type-arg]
    capacities = draw(st.lists(st.sampled_from([1.0, 2.0, 4.0]), min_size=1, max_size=3))
    rooms = {
        f"w{i}": WorkerRoom(name=f"w{i}", capacity=Resources(cpus=c, memory=4 * GIB))
        for i, c in enumerate(capacities)
    }
    running = []
    for n in range(draw(st.integers(0, 5))):
        worker = draw(st.sampled_from(sorted(rooms)))
        cost = draw(st.sampled_from(COSTS))
        if rooms[worker].takes(cost):
            rooms[worker] = rooms[worker].with_build(cost)
            repo = draw(st.sampled_from(REPOS))
            started = draw(st.floats(0, NOW))
            running.append(
                RunningBuild(id=1000 + n, repo=repo, worker=worker, cost=cost, started_at=started)
            )
    queue = [
        WaitingBuild(
            id=i,
            repo=draw(st.sampled_from(REPOS)),
            cost=draw(st.sampled_from(COSTS)),
            queued_at=draw(st.floats(0, NOW)),
            priority=draw(st.sampled_from([0, 0, 1])),
        )
        for i in range(draw(st.integers(0, 8)))
    ]
    seconds = st.sampled_from([0.2, 1.0, 2.0, 5.0])
    if all_known:
        durations = {r: draw(seconds) for r in REPOS}
    else:
        durations = draw(st.dictionaries(st.sampled_from(REPOS), seconds, max_size=3))
    return {
        "queue": queue,
        "rooms": list(rooms.values()),
        "running": running,
        "durations": durations,
        "arrivals": draw(st.dictionaries(st.sampled_from(REPOS), st.sampled_from([1.0, 10.0]))),
        "wait_bound": draw(st.sampled_from([0.5, 1.0, 1.5])),
        "starve_after": draw(st.sampled_from([5.0, 30.0])),
        "served": draw(st.dictionaries(st.sampled_from(REPOS), st.floats(0, 50))),
    }


def _place(s: dict):  # type: ignore[no-untyped-def,type-arg]
    return place(
        s["queue"],
        s["rooms"],
        served=s["served"],
        now=NOW,
        starve_after=s["starve_after"],
        durations=s["durations"],
        arrivals=s["arrivals"],
        running=s["running"],
        wait_bound=s["wait_bound"],
    )


@settings(max_examples=150, deadline=None)
@given(situations())
def test_nothing_is_overcommitted_and_each_build_starts_once(s: dict) -> None:  # type: ignore[type-arg]
    plan = _place(s)
    rooms = {r.name: r for r in s["rooms"]}
    costs = {b.id: b.cost for b in s["queue"]}
    started = [b for b, _ in plan.starts]
    assert len(started) == len(set(started)) and set(started) <= set(costs)
    for build_id, worker in plan.starts:
        assert rooms[worker].takes(costs[build_id])
        rooms[worker] = rooms[worker].with_build(costs[build_id])
    for room in rooms.values():
        assert room.used_cpus <= room.capacity.cpus + 1e-9
        assert room.used_memory <= room.capacity.memory
    assert plan == _place(s)  # a pure function of its inputs


@settings(max_examples=150, deadline=None)
@given(situations())
def test_what_starts_beside_a_reservation_leaves_it_room(s: dict) -> None:  # type: ignore[type-arg]
    plan = _place(s)
    if not plan.reserved:
        return
    ((head_id, (worker, at)),) = plan.reserved.items()
    queue = {b.id: b for b in s["queue"]}
    assert head_id not in dict(plan.starts)
    rooms = {r.name: r for r in s["rooms"]}
    running = list(s["running"])
    for build_id, name in plan.starts:
        build = queue[build_id]
        rooms[name] = rooms[name].with_build(build.cost)
        running.append(
            RunningBuild(id=build_id, repo=build.repo, worker=name, cost=build.cost, started_at=NOW)
        )
    outlook = Outlook(
        {n: r.free() for n, r in rooms.items()},
        {n: r.labels for n, r in rooms.items()},
        running,
        s["durations"],
        now=NOW,
        wait_bound=s["wait_bound"],
    )
    assert outlook.fit_time(worker, queue[head_id].cost) <= max(at, NOW) + 1e-6


@settings(max_examples=150, deadline=None)
@given(situations(all_known=True))
def test_a_starving_head_that_fits_is_started(s: dict) -> None:  # type: ignore[type-arg]
    s = {**s, "starve_after": 5.0}
    plan = _place(s)
    rooms = s["rooms"]
    can = [b for b in s["queue"] if any(b.cost.fits(r.capacity) for r in rooms)]
    if not can:
        return
    head = min(can, key=lambda b: (b.queued_at, b.id))
    if NOW - head.queued_at >= 5.0 and any(r.takes(head.cost) for r in rooms):
        assert head.id in dict(plan.starts)


def test_an_unknown_end_counts_as_never() -> None:
    room = WorkerRoom(name="w", capacity=Resources(cpus=2, memory=4 * GIB))
    room = attrs.evolve(room.with_build(COSTS[2]))
    running = [RunningBuild(id=1, repo="new", worker="w", cost=COSTS[2], started_at=0.0)]
    outlook = Outlook({"w": room.free()}, {"w": frozenset()}, running, {}, now=1.0, wait_bound=1)
    assert math.isinf(outlook.fit_time("w", COSTS[0]))
