"""What is sent ahead to a full worker is what the placement policy itself
would start on its room once builds end (sauci.distributed._ahead)."""

from __future__ import annotations

import random

from sauci.core.placement import WaitingBuild, WorkerRoom, place
from sauci.core.resources import Resources
from sauci.distributed._ahead import _first_of_each_kind, plan_ahead

GIB = 1024**3


def test_the_first_of_each_kind_gives_the_policy_s_first_start_on_a_room():
    # Placing among the first queued build of each kind (a queue of hundreds
    # costs a quadratic pass otherwise) starts what placing among all would.
    rng = random.Random(7)
    for _ in range(200):
        waiting = [
            WaitingBuild(
                id=i,
                repo=rng.choice("abc"),
                cost=Resources(cpus=rng.choice([0.5, 1.0, 2.0]), memory=rng.choice([1, 2]) * GIB),
                queued_at=1000.0 + rng.choice([0.0, 0.5, 2.0, 40.0]) + i / 1000,
                priority=rng.choice([0, 0, 1]),
            )
            for i in range(rng.randint(1, 30))
        ]
        room = WorkerRoom(
            name="w1",
            capacity=Resources(cpus=2.0, memory=4 * GIB),
            used_cpus=rng.choice([0.0, 0.5, 1.0, 1.5]),
            used_memory=rng.choice([0, 1, 2]) * GIB,
            max_builds=2,
            running=1,
        )
        served = {"a": rng.random() * 10, "b": rng.random() * 10}
        kwargs = {"served": served, "now": 1050.0, "hold_after": 1.0, "starve_after": 30.0}
        every = place(waiting, [room], **kwargs).starts[:1]
        first = place(_first_of_each_kind(waiting), [room], **kwargs).starts[:1]
        assert every == first


def test_a_full_worker_gets_one_build_ahead_per_slot_and_no_more():
    waiting = [
        WaitingBuild(id=i, repo="a", cost=Resources(cpus=1.0, memory=GIB), queued_at=float(i))
        for i in range(5)
    ]
    room = WorkerRoom(
        name="w1",
        capacity=Resources(cpus=2.0, memory=4 * GIB),
        used_cpus=2.0,
        used_memory=2 * GIB,
        max_builds=2,
        running=2,
    )
    holds = [Resources(cpus=1.0, memory=GIB)] * 2
    kwargs = {"served": {}, "now": 10.0, "hold_after": 1.0, "starve_after": 30.0}
    assert [(0, "w1"), (1, "w1")] == plan_ahead(waiting, [room], {}, holds, ["w1", "w1"], **kwargs)
    one_ahead = {"w1": [Resources(cpus=1.0, memory=GIB)]}
    assert [(0, "w1")] == plan_ahead(waiting, [room], one_ahead, holds, ["w1", "w1"], **kwargs)
    free = WorkerRoom(name="w1", capacity=room.capacity, used_cpus=1.0, max_builds=2, running=1)
    assert [] == plan_ahead(waiting, [free], {}, holds[:1], ["w1"], **kwargs)
