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


class _History:
    """Expected durations as a store of the mixed load's builds would give them."""

    def forecast(self, repos):
        from sauci.core.durations import Forecast

        return Forecast(durations={"heavy": 2.0, "light": 0.2}, arrivals={"light": 10.0})

    def ended(self, repo):
        pass


def _drain_case(**placer):
    """w2 runs four light builds to 2.2, w1 a heavy one to 2.7; the next heavy
    build waits, and light builds queued since 0.6: one round at 2.05."""
    from sauci.core.models import Build, Status, Worker
    from sauci.distributed._placing import CostPlacer

    costs = {"heavy": Resources(cpus=2, memory=GIB), "light": Resources(cpus=0.5, memory=GIB // 4)}
    placer = CostPlacer(
        cost_of=lambda builds: [costs[b.repo] for b in builds],
        resend_after=60.0,
        history=_History(),  # type: ignore[arg-type]
        **placer,
    )
    running = [Build(id=1, repo="heavy", status=Status.RUNNING, claimed_by="w1", started_at=0.7)]
    running += [
        Build(id=10 + i, repo="light", status=Status.RUNNING, claimed_by="w2", started_at=2.0)
        for i in range(4)
    ]
    queued = [(Build(id=2, repo="heavy", queued_at=0.0), ())]
    queued += [(Build(id=100 + i, repo="light", queued_at=0.6 + 0.1 * i), ()) for i in range(15)]
    live = [
        Worker(name=n, slots=4, started_at=0.0, heartbeat_at=2.0, cpus=2.0, memory=4 * GIB)
        for n in ("w1", "w2")
    ]
    return placer.plan(queued, running, live, now=2.05, mono=2.05)


def test_nothing_is_sent_ahead_to_a_worker_a_heavy_build_waits_to_drain():
    # Draining w2 for the next heavy build is not fair yet (light builds
    # queued since 0.6 would wait too long): w2 takes light builds as its
    # slots free, each placed then, and none is sent ahead, which would start
    # there before the drain and hold the heavy build back a round.
    plan = _drain_case()
    assert "w2 is not drained for it yet" in plan.waiting[2]
    assert [] == [(b.id, w) for b, w, _ in plan.sends]


def test_the_drain_wait_setting_bounds_how_long_lighter_builds_may_wait():
    # With lighter builds allowed to wait 3 s (the `drain_wait` setting), w2
    # is drained for the heavy build now; with the default 1 s, it is not.
    assert "w2 is held for it" in _drain_case(wait_bound=3.0).waiting[2]
    assert "w2 is held for it" not in _drain_case(wait_bound=1.0).waiting[2]
