"""Placement with expected durations, by default: a worker is drained for a
heavy build once the lighter builds waiting (and those to come) are expected
to start within the wait bound elsewhere, and not before more rounds of them
would let the next heavy build start earlier (sauci.core.drain). Time here
is simulated: no test waits on a clock."""

from __future__ import annotations

import pytest
from test_placement_reservation import simulate

import sauci.core.lighter_waits
from sauci.core.placement import Placement, RunningBuild, WaitingBuild, WorkerRoom, place
from sauci.core.resources import Resources

GIB = 2**30
HEAVY = Resources(cpus=2, memory=GIB)
LIGHT = Resources(cpus=0.5, memory=GIB // 4)
CAPACITY = Resources(cpus=2, memory=4 * GIB)
DURATIONS = {"heavy": 2.0, "light": 0.2}
ARRIVALS = {"light": 10.0}


def _room(name: str, *costs: Resources) -> WorkerRoom:
    room = WorkerRoom(name=name, capacity=CAPACITY)
    for cost in costs:
        room = room.with_build(cost)
    return room


def _heavy(id: int) -> WaitingBuild:
    return WaitingBuild(id=id, repo="heavy", cost=HEAVY, queued_at=0.0)


def _lights(first: float, last: float) -> list[WaitingBuild]:
    count = round((last - first) / 0.1) + 1
    return [
        WaitingBuild(id=100 + round((first + 0.1 * i) * 10), repo="light", cost=LIGHT,
                     queued_at=round(first + 0.1 * i, 3))
        for i in range(count)
    ]  # fmt: skip


def _place(
    queue: list[WaitingBuild], rooms: list[WorkerRoom], running: list[RunningBuild], now: float
) -> Placement:
    return place(
        queue,
        rooms,
        served={"heavy": 8.0, "light": 1.0},
        now=now,
        starve_after=10,
        durations=DURATIONS,
        arrivals=ARRIVALS,
        running=running,
        wait_bound=1.45,
    )


def test_a_worker_is_drained_once_the_waiting_light_builds_start_in_time_elsewhere() -> None:
    # w2 runs a heavy build to 2.7; w1 has just freed. At 2.0 the oldest
    # light build (queued 0.6) would wait to 2.7 if w1 were drained now: too
    # long, so light builds take w1 and nothing is held.
    running = [RunningBuild(id=1, repo="heavy", worker="w2", cost=HEAVY, started_at=0.7)]
    rooms = [_room("w1"), _room("w2", HEAVY)]
    early = _place([_heavy(2), _heavy(3), *_lights(0.6, 2.0)], rooms, running, now=2.0)
    assert [106, 107, 108, 109] == [b for b, _ in early.starts]
    assert "held" not in early.waiting[2]
    assert "w1 is not drained for it yet, so that lighter builds" in early.waiting[2]
    # At 2.2, once four more have started, the oldest left (1.4) starts by
    # 2.7 + a round: w1 is drained for the heavy build, nothing else goes there.
    late = _place([_heavy(2), _heavy(3), *_lights(1.0, 2.2)], rooms, running, now=2.2)
    assert [(110, "w1"), (111, "w1"), (112, "w1"), (113, "w1")] == list(late.starts)
    assert "w1 is held for it" in late.waiting[2]
    # Said as data too, for the Celery dispatcher's builds sent ahead: none to w1.
    assert {} == dict(early.held)
    assert {"w1": 2} == dict(late.held)


def test_draining_waits_while_more_light_rounds_let_the_next_heavy_build_start_earlier() -> None:
    # w1 runs a heavy build to 4.4; w2 is free at 3.5. Draining w2 now would be
    # fair (the oldest light build, 3.0, starts by 4.4), but it leaves w1 a
    # backlog that holds the next heavy build to 5.0; two more rounds of light
    # builds on w2 first let it start at 4.8.
    running = [RunningBuild(id=2, repo="heavy", worker="w1", cost=HEAVY, started_at=2.4)]
    rooms = [_room("w1", HEAVY), _room("w2")]
    lights = _lights(3.0, 3.5)
    plan = _place([_heavy(3), _heavy(4), *lights], rooms, running, now=3.5)
    assert [(130, "w2"), (131, "w2"), (132, "w2"), (133, "w2")] == list(plan.starts)
    assert "held" not in plan.waiting[3]
    # The last heavy build has no next one to wait for: it starts at once.
    last = _place([_heavy(3), *lights], rooms, running, now=3.5)
    assert (3, "w2") == last.starts[0]


def test_a_build_ending_just_after_a_drained_worker_frees_still_starts_there() -> None:
    # w1 is drained for the heavy build; its light builds end 5 ms from now.
    # A quick build that ends within SLIP after that starts on w1 anyway (a
    # worker's room is not left idle to save the heavy build milliseconds);
    # a light one, ending 0.2 s later, does not.
    now = 1.0
    running = [
        RunningBuild(id=50 + i, repo="light", worker="w1", cost=LIGHT, started_at=now - 0.195)
        for i in range(4)
    ]
    running.append(RunningBuild(id=60, repo="heavy", worker="w2", cost=HEAVY, started_at=now - 1.5))
    rooms = [_room("w1", LIGHT, LIGHT, LIGHT), _room("w2", HEAVY)]
    quick = WaitingBuild(id=7, repo="quick", cost=LIGHT, queued_at=now)
    light = WaitingBuild(id=8, repo="light", cost=LIGHT, queued_at=now)
    plan = place(
        [_heavy(1), quick],
        rooms,
        served={"heavy": 8.0},
        now=now,
        durations={**DURATIONS, "quick": 0.01},
        running=running[1:],  # one of w1's light builds has ended
        wait_bound=1.45,
    )
    assert ((7, "w1"),) == plan.starts
    assert "w1 is held for it" in plan.waiting[1]
    slow = place(
        [_heavy(1), light],
        rooms,
        served={"heavy": 8.0},
        now=now,
        durations=DURATIONS,
        running=running[1:],
        wait_bound=1.45,
    )
    assert () == slow.starts


@pytest.mark.parametrize(("delay", "stagger"), [(0.0, 0.0), (0.005, 0.0), (0.005, 0.003)])
def test_the_mixed_load_meets_both_goals_by_default(delay: float, stagger: float) -> None:
    bound = (5 * 2 * 2.0 + 50 * 0.5 * 0.2) / 4  # 6.25 s
    makespan, light = simulate(delay=delay, stagger=stagger)
    assert makespan <= 1.1 * bound, makespan
    assert light <= 1.5, light


def test_a_round_plays_nothing_forward(monkeypatch: pytest.MonkeyPatch) -> None:
    # The default decides from the builds waiting, in closed form: the
    # play-forward of the reservation policy (milliseconds a round, and as
    # many late for every start in real time) is not called at all.
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("played forward")

    monkeypatch.setattr(sauci.core.lighter_waits, "_play", refuse)
    makespan, _ = simulate()
    assert makespan <= 6.875
    with pytest.raises(AssertionError, match="played forward"):
        simulate(reserve=True)
