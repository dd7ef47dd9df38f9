"""Placement by reservation: expected durations, backfilling that never delays
the head, lighter builds kept within their wait bound, and today's rule when
no duration is known. Time here is simulated: no test waits on a clock."""

from __future__ import annotations

import heapq

import attrs

from sauci.core.placement import Placement, RunningBuild, WaitingBuild, WorkerRoom, place
from sauci.core.resources import Resources

GIB = 2**30
HEAVY = Resources(cpus=2, memory=GIB)
LIGHT = Resources(cpus=0.5, memory=GIB // 4)
CAPACITY = Resources(cpus=2, memory=4 * GIB)
DURATIONS = {"heavy": 2.0, "light": 0.2}


def _rooms(*used: tuple[float, int]) -> list[WorkerRoom]:
    return [
        WorkerRoom(name=f"w{i + 1}", capacity=CAPACITY, used_cpus=c, used_memory=m, running=n)
        for i, (c, m, n) in enumerate((c, m, 1 if c else 0) for c, m in used)
    ]


def _build(id: int, repo: str, cost: Resources, at: float = 0.0) -> WaitingBuild:
    return WaitingBuild(id=id, repo=repo, cost=cost, queued_at=at)


def _run(id: int, repo: str, worker: str, cost: Resources, at: float) -> RunningBuild:
    return RunningBuild(id=id, repo=repo, worker=worker, cost=cost, started_at=at, queued_at=at)


def test_without_durations_it_places_as_before() -> None:
    queue = [_build(i, "heavy", HEAVY) for i in range(3)] + [
        _build(10 + i, "light", LIGHT, at=1.0) for i in range(5)
    ]
    rooms = _rooms((2, GIB), (0.5, GIB // 4))
    running = [_run(50, "heavy", "w1", HEAVY, 0.0), _run(51, "light", "w2", LIGHT, 0.9)]
    before = place(queue, rooms, served={}, now=1.5, hold_after=1.0)
    for durations in (None, {}, {"elsewhere": 3.0}):
        again = place(queue, rooms, served={}, now=1.5, hold_after=1.0, durations=durations)
        assert before.starts == again.starts
        assert before.waiting == again.waiting
    # Known durations but no known end on any worker: today's rule as well.
    partly = place(
        queue, rooms, served={}, now=1.5, hold_after=1.0, durations={"light": 0.2}, running=running
    )
    assert before.starts == partly.starts


def test_the_head_is_reserved_the_worker_that_frees_first_and_backfill_does_not_delay_it() -> None:
    rooms = _rooms((2, GIB), (1.0, GIB // 2))
    running = [
        _run(50, "heavy", "w1", HEAVY, 0.0),  # ends at 2.0
        _run(51, "other", "w2", LIGHT, 0.0),  # ends at 0.5
        _run(52, "other", "w2", LIGHT, 0.0),
    ]
    queue = [_build(1, "heavy", HEAVY, 0.0), _build(2, "quick", LIGHT, 0.1)]
    durations = {"heavy": 2.0, "other": 0.5, "quick": 1.0}
    # A wait bound long enough that only the reservation decides.
    plan = place(
        queue,
        rooms,
        served={},
        now=0.2,
        durations=durations,
        running=running,
        wait_bound=5.0,
        reserve=True,
    )
    assert {1: ("w2", 0.5)} == plan.reserved
    assert 0.5 == plan.wake_at
    assert "w2 is reserved for it" in plan.waiting[1]
    # The quick build would end at 1.2, after the reservation: it may not take w2's room.
    assert () == plan.starts
    short = place(
        queue,
        rooms,
        served={},
        now=0.2,
        durations={**durations, "quick": 0.2},
        running=running,
        wait_bound=5.0,
        reserve=True,
    )
    assert ((2, "w2"),) == short.starts  # it ends at 0.4, before the head is due


def test_a_due_reservation_starts_its_head_at_once() -> None:
    rooms = _rooms((2, GIB), (0, 0))
    running = [_run(50, "heavy", "w1", HEAVY, 0.0)]
    queue = [_build(1, "heavy", HEAVY, 0.0), _build(2, "heavy", HEAVY, 0.0)]
    plan = place(
        queue,
        rooms,
        served={},
        now=0.8,
        durations=DURATIONS,
        running=running,
        reserved={1: ("w2", 0.8)},
        reserve=True,
    )
    assert ((1, "w2"),) == plan.starts
    assert 0.8 == plan.wake_at  # the next head is reserved in the next round, at once


def test_a_heavy_build_waits_rather_than_shut_light_ones_out_too_long() -> None:
    # w1 runs a heavy build to 2.0; starting another on w2 at 0 would leave no
    # room for the light builds, which come every 0.1 s, for 2 s.
    rooms = _rooms((2, GIB), (0, 0))
    running = [_run(50, "heavy", "w1", HEAVY, 0.0)]
    queue = [_build(1, "heavy", HEAVY, 0.0), _build(10, "light", LIGHT, 0.0)]
    plan = place(
        queue,
        rooms,
        served={},
        now=0.0,
        durations=DURATIONS,
        arrivals={"light": 10.0},
        running=running,
        wait_bound=1.3,
        reserve=True,
    )
    assert [(10, "w2")] == list(plan.starts)
    worker, at = plan.reserved[1]
    assert "w2" == worker
    assert 0.6 <= at <= 1.0  # the gap it leaves the light builds stays within about 1.3 s


def test_a_starving_head_starts_as_soon_as_its_worker_has_room() -> None:
    rooms = _rooms((2, GIB), (0, 0))
    running = [_run(50, "heavy", "w1", HEAVY, 30.0)]
    queue = [_build(1, "heavy", HEAVY, 0.0), _build(10, "light", LIGHT, 30.5)]
    plan = place(
        queue,
        rooms,
        served={"light": 0.0, "heavy": 100.0},
        now=31.0,
        starve_after=30,
        durations=DURATIONS,
        arrivals={"light": 10.0},
        running=running,
        wait_bound=1.0,
        reserve=True,
    )
    assert (1, "w2") == plan.starts[0]


def simulate(
    *,
    wait_bound: float = 1.45,
    delay: float = 0.0,
    stagger: float = 0.0,
    history: bool = True,
    reserve: bool = False,
) -> tuple[float, float]:
    """The mixed load of benchmarks/mixed_load.py on a simulated clock: each
    build starts ``delay`` after it is placed, and each after the first of a
    round ``stagger`` later than the one before (as threads or workers start
    one by one, and so end one by one); (makespan, longest light wait)."""
    jobs = {i: ("heavy", HEAVY, 2.0, 0.0) for i in range(5)}
    jobs.update({100 + i: ("light", LIGHT, 0.2, round(0.1 * i, 3)) for i in range(50)})
    rooms = {n: WorkerRoom(name=n, capacity=CAPACITY) for n in ("w1", "w2")}
    began: dict[int, tuple[str, float]] = {}
    queued: dict[int, WaitingBuild] = {}
    served: dict[str, float] = {}
    reserved: dict[int, tuple[str, float]] = {}
    ended: set[int] = set()
    events = [a for *_, a in jobs.values()]
    heapq.heapify(events)
    last = 0.0
    while events:
        now = heapq.heappop(events)
        while events and events[0] <= now + 1e-9:
            heapq.heappop(events)
        for i, (repo, cost, _, arrives) in jobs.items():
            if arrives <= now + 1e-9 and i not in queued and i not in began:
                queued[i] = WaitingBuild(id=i, repo=repo, cost=cost, queued_at=arrives)
        for i, (worker, start) in began.items():
            repo, cost, seconds, _ = jobs[i]
            if i not in ended and start + seconds <= now + 1e-9:
                ended.add(i)
                r = rooms[worker]
                rooms[worker] = attrs.evolve(
                    r,
                    used_cpus=r.used_cpus - cost.cpus,
                    used_memory=r.used_memory - cost.memory,
                    running=r.running - 1,
                )
                served[repo] = served.get(repo, 0.0) + cost.cpus * seconds
                last = max(last, now)
        running = [
            _run(i, jobs[i][0], w, jobs[i][1], at) for i, (w, at) in began.items() if i not in ended
        ]
        plan: Placement = place(
            list(queued.values()),
            list(rooms.values()),
            served=served,
            now=now,
            starve_after=10,
            durations=DURATIONS if history else None,
            arrivals={"light": 10.0} if history else None,
            running=running,
            wait_bound=wait_bound,
            reserved=reserved,
            reserve=reserve,
        )
        reserved = dict(plan.reserved)
        for k, (i, worker) in enumerate(plan.starts):
            del queued[i]
            rooms[worker] = rooms[worker].with_build(jobs[i][1])
            began[i] = (worker, now + delay + k * stagger)
            heapq.heappush(events, began[i][1] + jobs[i][2])
        if plan.wake_at is not None:
            heapq.heappush(events, max(plan.wake_at, now + 1e-7))
    light = max(at - jobs[i][3] for i, (_, at) in began.items() if jobs[i][0] == "light")
    return last, light


def test_the_mixed_load_meets_both_goals_with_learnt_durations() -> None:
    bound = (5 * 2 * 2.0 + 50 * 0.5 * 0.2) / 4  # 6.25 s
    for delay in (0.0, 0.005):
        makespan, light = simulate(delay=delay, reserve=True)
        assert makespan <= 1.1 * bound, (delay, makespan)
        assert light <= 1.5, (delay, light)
    # Without history it places as before durations: light builds wait at most
    # hold_after, the heavy ones finish later.
    makespan, light = simulate(history=False)
    assert makespan > 1.1 * bound
    assert light <= 1.0 + 1e-9
