"""The mixed load through the Celery dispatcher's placer on a simulated clock:
the CostPlacer as the dispatcher runs it (builds sent to each worker's own
queue, builds sent ahead to full workers), two workers of 4 slots and 2 CPUs
that take messages from their queue as slots free, each claim ``delay`` s
after, and the placer asked again on every arrival and every end. The
builds' durations are known, as the store's history gives them once builds
have ended. No test waits on a clock."""

from __future__ import annotations

import heapq

import pytest

from sauci.core.durations import Forecast
from sauci.core.models import Build, Status, Worker
from sauci.core.resources import Resources
from sauci.distributed._placing import CostPlacer

GIB = 2**30
COST = {"heavy": Resources(cpus=2, memory=GIB), "light": Resources(cpus=0.5, memory=GIB // 4)}
SECONDS = {"heavy": 2.0, "light": 0.2}
BOUND = (5 * 2 * 2.0 + 50 * 0.5 * 0.2) / 4  # the packing lower bound, 6.25 s


class _Known:
    """The durations and rate a store's history gives once the builds have run:
    each build's run, ``overhead`` included (its start and end on a worker)."""

    def __init__(self, overhead: float = 0.0) -> None:
        self.durations = {repo: s + overhead for repo, s in SECONDS.items()}

    def forecast(self, repos: object) -> Forecast:
        return Forecast(durations=dict(self.durations), arrivals={"light": 10.0})

    def ended(self, repo: str) -> None:
        pass


def simulate(
    *,
    delay: float,
    wait_bound: float | None,
    first_light: float = 0.0,
    defer: float = 0.0,
    overhead: float = 0.0,
) -> tuple[float, float]:
    """(makespan, longest wait of a light build); the first light build is
    queued ``first_light`` s after the heavy ones, placed with ``defer``;
    each build runs ``overhead`` s longer than its sleep (the real workers'
    per-build cost: 20-40 ms on this machine), and the history learns so."""
    placer = CostPlacer(
        cost_of=lambda builds: [COST[b.repo] for b in builds],
        resend_after=60.0,
        history=_Known(overhead),  # type: ignore[arg-type]
        wait_bound=wait_bound,
        defer=defer,
    )
    arrives = {i: ("heavy", 0.0) for i in range(5)}
    arrives.update({100 + i: ("light", round(max(0.1 * i, first_light), 3)) for i in range(50)})
    events: list[tuple[float, int, str, object]] = []
    order = iter(range(10**6))
    for i, (_, at) in arrives.items():
        heapq.heappush(events, (at, next(order), "arrive", i))
    workers = [
        Worker(name=n, slots=4, started_at=0.0, heartbeat_at=0.0, cpus=2.0, memory=4 * GIB)
        for n in ("w1", "w2")
    ]
    inbox: dict[str, list[int]] = {"w1": [], "w2": []}  # each worker's own queue
    free = {"w1": 4, "w2": 4}
    taking = {"w1": False, "w2": False}
    queued: dict[int, Build] = {}
    running: dict[int, Build] = {}
    began: dict[int, float] = {}
    ended: dict[int, float] = {}

    def wake(worker: str, now: float) -> None:
        if not taking[worker]:
            taking[worker] = True
            heapq.heappush(events, (now + delay, next(order), "take", worker))

    while events:
        now, _, kind, what = heapq.heappop(events)
        if kind == "take":  # a slot free takes the next message; a lost claim drops it
            worker = str(what)
            taking[worker] = False
            while free[worker] and inbox[worker]:
                build = queued.pop(inbox[worker].pop(0), None)
                if build is not None:
                    running[build.id] = Build(
                        id=build.id,
                        repo=build.repo,
                        status=Status.RUNNING,
                        claimed_by=worker,
                        started_at=now,
                        queued_at=build.queued_at,
                    )
                    began[build.id] = now
                    free[worker] -= 1
                    end = now + SECONDS[build.repo] + overhead
                    heapq.heappush(events, (end, next(order), "end", build.id))
            continue
        if kind == "arrive":
            build_id = int(str(what))
            queued[build_id] = Build(id=build_id, repo=arrives[build_id][0], queued_at=now)
        else:
            worker = running.pop(int(str(what))).claimed_by or ""
            ended[int(str(what))] = now
            free[worker] += 1
            wake(worker, now)
        if events and events[0][0] <= now + 1e-9 and events[0][2] != "take":
            continue  # builds queued or ended at the same instant: one round
        plan = placer.plan(
            [(b, ()) for b in queued.values()], list(running.values()), workers, now=now, mono=now
        )
        for build, worker, _ in plan.sends:
            inbox[worker].append(build.id)
            wake(worker, now)
    light = max(began[i] - arrives[i][1] for i in arrives if arrives[i][0] == "light")
    return max(ended.values()), light


@pytest.mark.parametrize("delay", [0.005, 0.01])
def test_with_the_in_process_wait_bound_the_dispatcher_meets_both_goals(delay: float) -> None:
    # drain_wait 1.45 s, as benchmarks/mixed_load.py runs the policy: within
    # 1.1x of the bound and no light build waiting over 1.5 s while claims
    # follow the sends within 10 ms.
    makespan, light = simulate(delay=delay, wait_bound=1.45)
    assert makespan <= 1.1 * BOUND, makespan
    assert light <= 1.5, light


def test_the_default_drain_wait_keeps_light_builds_within_it_and_pays_in_makespan() -> None:
    # The server's default drain_wait keeps its promise to light builds, and
    # pays for it in makespan against the in-process figure's 1.45 s.
    import attrs

    from sauci.core.config import Settings

    default = attrs.fields(Settings).drain_wait.default
    makespan, light = simulate(delay=0.01, wait_bound=default)
    assert light <= default + 0.01, light
    assert makespan >= simulate(delay=0.01, wait_bound=1.45)[0]


def test_late_claims_cost_the_mixed_load_makespan() -> None:
    # 30 ms from a send to its claim (the real workers' on a loaded machine)
    # moves each heavy build's start later than claims 5 ms after their send.
    late, _ = simulate(delay=0.03, wait_bound=1.45)
    prompt, _ = simulate(delay=0.005, wait_bound=1.45)
    assert late > prompt, (late, prompt)


@pytest.mark.parametrize(("first_light", "delay"), [(0.02, 0.005), (0.05, 0.005), (0.02, 0.02)])
def test_light_builds_queued_a_moment_after_heavy_ones_keep_their_room_while_deferred(
    first_light: float, delay: float
) -> None:
    # The benchmark queues the five heavy builds, then the first light one
    # 20-50 ms later. Placed as they come, the first round starts two heavy
    # builds and light ones wait for one to end (about 2 s); with the server's
    # default place_defer the second heavy build waits for that moment, and
    # the light build goes first (the heavy repository is charged for the
    # build sent and not yet claimed): as when all came at once.
    import attrs

    from sauci.core.config import Settings

    defer = attrs.fields(Settings).place_defer.default
    _, raced = simulate(delay=delay, wait_bound=1.45, first_light=first_light)
    assert raced > 1.9, raced
    deferred = simulate(delay=delay, wait_bound=1.45, first_light=first_light, defer=defer)
    assert deferred == simulate(delay=delay, wait_bound=1.45), deferred
    makespan, light = deferred
    assert light <= 1.5, light
    if delay <= 0.01:
        assert makespan <= 1.1 * BOUND, makespan


def _floor(overhead: float) -> float:
    """The floor on the makespan of a placement of this load with light builds
    waiting at most 1.5 s, each build ``overhead`` s longer (docs/performance.md,
    "Issue 21, item 2, placement with per-build costs"): one worker runs three
    heavy builds, and before each of its second and third it serves two rounds
    of the light builds that cannot wait for the other worker's heavy build."""
    return 3 * (SECONDS["heavy"] + overhead) + 4 * (SECONDS["light"] + overhead)


@pytest.mark.parametrize("overhead", [0.02, 0.03, 0.04])
def test_a_per_build_overhead_keeps_light_waits_and_stays_near_the_floor(overhead: float) -> None:
    # The real workers spend 20-40 ms a build over its sleep. The policy,
    # learning the longer durations, still keeps every light build within
    # 1.5 s, and finishes within 5% of the floor such a cost sets; that
    # floor is over 1.1x the packing bound from about 10 ms a build.
    makespan, light = simulate(delay=0.005, wait_bound=1.45, overhead=overhead)
    assert light <= 1.5, light
    assert makespan <= 1.05 * _floor(overhead), (makespan, _floor(overhead))
    assert _floor(overhead) > 1.1 * BOUND
