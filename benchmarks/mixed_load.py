"""The mixed load of "Compute the seed asks for" item 2, through the placement
policy alone: ``python benchmarks/compute.py --mixed-load [--runs N]``.

5 heavy builds (2 CPUs, 2 s) and 50 light ones (0.5 CPU, 0.2 s) on two
workers of 2 CPUs, in real time: each build is a thread that sleeps its
duration once :func:`sauci.core.placement.place` starts it, and the
dispatcher places again on every arrival, every end and when a reservation
is due (``Placement.wake_at``), as the server does on its events. The heavy
builds come from one repository at t=0, the light ones from another, one
every 0.1 s. Printed beside the packing lower bound (total CPU-seconds /
total CPUs, the bare figure) and the old way in the same run (two slots per
worker, first come first served):

- placement by cost with no history: no build has finished yet, so no
  duration is known and the policy places as it did before durations;
- placement by cost with history: the durations and arrival rates learnt
  (:mod:`sauci.core.durations`) from the builds of the run before (the
  "no history" run, or the previous history run), as a server learns them
  from its store (serve and the Celery dispatcher do by default): a worker
  is drained for a heavy build when the lighter builds keep within the wait
  bound and more rounds of them would not let the next heavy build start
  earlier (:mod:`sauci.core.drain`). The reservation policy it replaced as
  the default (:mod:`sauci.core.backfill`) is ``place(..., reserve=True)``.

The last line is the goal figure: makespan over the bound (goal 1.1x) and
the longest wait of a light build (goal 1.5 s), with the bare bound.
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from collections.abc import Callable

import attrs

from sauci.core.durations import Forecast, arrival_rates, expected_durations
from sauci.core.models import Build, Status
from sauci.core.placement import Placement, RunningBuild, WaitingBuild, WorkerRoom, place
from sauci.core.resources import Resources

GIB = 2**30
TRACE = bool(os.environ.get("MIXED_TRACE"))
HEAVY = (Resources(cpus=2, memory=GIB), 2.0)
LIGHT = (Resources(cpus=0.5, memory=GIB // 4), 0.2)
GOAL_RATIO, GOAL_WAIT = 1.1, 1.5
WAIT_BOUND = 1.45  # the policy's bound on a lighter build's expected wait, under the goal's 1.5 s

Policy = Callable[..., Placement]


@attrs.frozen
class Job:
    id: int
    repo: str
    cost: Resources
    seconds: float
    arrives: float


@attrs.frozen
class Run:
    makespan: float
    light_wait: float
    builds: tuple[Build, ...]  # as a store would keep them: the history of the next run
    place_cpu: float  # CPU seconds spent in the policy


def mixed_load() -> list[Job]:
    jobs = [Job(i, "heavy", HEAVY[0], HEAVY[1], 0.0) for i in range(5)]
    jobs += [Job(100 + i, "light", LIGHT[0], LIGHT[1], 0.1 * i) for i in range(50)]
    return jobs


def lower_bound(jobs: list[Job], cpus: float) -> float:
    area = sum(j.cost.cpus * j.seconds for j in jobs) / cpus
    return max(area, max(j.arrives + j.seconds for j in jobs))


def by_cost(forecast: Forecast | None) -> Policy:
    """The policy as the server runs it, with what history it has; like the
    server, it gives each round's reservation back to the next."""
    kept: dict[int, tuple[str, float]] = {}

    def policy(queue, rooms, served, now, running):  # type: ignore[no-untyped-def]
        plan = place(
            queue,
            rooms,
            served=served,
            now=now,
            hold_after=1.0,
            starve_after=10,
            durations=forecast.durations if forecast else None,
            arrivals=forecast.arrivals if forecast else None,
            running=running,
            wait_bound=WAIT_BOUND,
            reserved=kept,
        )
        kept.clear()
        kept.update(plan.reserved)
        return plan

    return policy


def slots_fifo(queue, rooms, served, now, running) -> Placement:  # type: ignore[no-untyped-def]
    """The old way: every build takes one of ``max_builds`` slots, first come first served."""
    starts = []
    free = {r.name: (r.max_builds or 2) - r.running for r in rooms}
    for build in sorted(queue, key=lambda b: (b.queued_at, b.id)):
        name = next((n for n, left in free.items() if left > 0), None)
        if name is None:
            break
        free[name] -= 1
        starts.append((build.id, name))
    return Placement(starts=tuple(starts), waiting={})


def learn(builds: tuple[Build, ...]) -> Forecast:
    """What a server's store would tell the policy after these builds."""
    until = max(b.queued_at for b in builds)
    return Forecast(
        durations=expected_durations(builds),
        arrivals=arrival_rates(builds, since=0.0, until=until),
    )


def run_load(jobs: list[Job], policy: Policy, *, slots: bool = False) -> Run:
    """Run ``jobs`` in real time under ``policy``."""
    capacity = Resources(cpus=2, memory=4 * GIB)
    rooms = {
        n: WorkerRoom(name=n, capacity=capacity, max_builds=2 if slots else None)
        for n in ("w1", "w2")
    }
    byid = {j.id: j for j in jobs}
    began: dict[int, tuple[str, float]] = {}  # id -> worker, start
    finished: dict[int, float] = {}
    served: dict[str, float] = {}
    wake = threading.Condition()
    ended: list[int] = []
    queued: dict[int, WaitingBuild] = {}
    pending = sorted(jobs, key=lambda j: j.arrives)
    threads = []
    cpu = 0.0
    start = time.monotonic()

    def finish(job: Job) -> None:
        time.sleep(job.seconds)
        at = time.monotonic() - start  # when it ended, not when the dispatcher saw it
        with wake:
            ended.append(job.id)
            finished[job.id] = at
            wake.notify()

    due: float | None = None
    while len(finished) < len(jobs):
        with wake:
            now = time.monotonic() - start
            while pending and pending[0].arrives <= now:
                j = pending.pop(0)
                queued[j.id] = WaitingBuild(id=j.id, repo=j.repo, cost=j.cost, queued_at=j.arrives)
            for build_id in ended:
                job, (worker, _) = byid[build_id], began[build_id]
                r = rooms[worker]
                # Charged in CPU-seconds once known, as the server does when a build ends.
                served[job.repo] = served.get(job.repo, 0.0) + job.cost.cpus * job.seconds
                rooms[worker] = attrs.evolve(
                    r,
                    used_cpus=r.used_cpus - job.cost.cpus,
                    used_memory=r.used_memory - job.cost.memory,
                    running=r.running - 1,
                )
            ended.clear()
            running = [
                RunningBuild(
                    id=i,
                    repo=byid[i].repo,
                    worker=w,
                    cost=byid[i].cost,
                    started_at=at,
                    queued_at=byid[i].arrives,
                )
                for i, (w, at) in began.items()
                if i not in finished
            ]
            before = time.thread_time()
            plan = policy(list(queued.values()), list(rooms.values()), served, now, running)
            cpu += time.thread_time() - before
            for build_id, worker in plan.starts:
                job = byid[build_id]
                del queued[build_id]
                rooms[worker] = rooms[worker].with_build(job.cost)
                began[build_id] = (worker, time.monotonic() - start)
                if TRACE and job.repo == "heavy":
                    print(
                        f"    heavy {build_id} on {worker} at {began[build_id][1]:.3f} (placed at {now:.3f})"
                    )
                t = threading.Thread(target=finish, args=(job,))
                t.start()
                threads.append(t)
            due = plan.wake_at
            if len(finished) == len(jobs):
                break
            now = time.monotonic() - start
            times = [pending[0].arrives] if pending else []
            times += [max(due, now)] if due is not None else []
            timeout = min(times, default=now + 0.5) - now
            if not ended:
                wake.wait(max(timeout, 0.0))
    for t in threads:
        t.join()
    makespan = max(finished.values())
    light = max(began[j.id][1] - j.arrives for j in jobs if j.repo == "light")
    builds = tuple(
        Build(
            id=j.id,
            repo=j.repo,
            status=Status.PASSED,
            queued_at=j.arrives,
            started_at=began[j.id][1],
            finished_at=finished[j.id],
        )
        for j in jobs
    )
    return Run(makespan=makespan, light_wait=light, builds=builds, place_cpu=cpu)


def mixed_load_figures(runs: int) -> None:
    jobs = mixed_load()
    bound = lower_bound(jobs, cpus=4)
    print(
        "mixed load: 5 x (2 CPUs, 2 s) + 50 x (0.5 CPU, 0.2 s, one per 0.1 s), 2 workers x 2 CPUs"
    )
    print(f"  packing lower bound (bare)        {bound:6.2f} s")
    rows: dict[str, list[Run]] = {"slots, FIFO (old)": [], "by cost, no history": []}
    rows["by cost, learnt durations"] = []
    history: Forecast | None = None
    for _ in range(runs):  # interleaved, so each row sees the same minutes of load
        rows["slots, FIFO (old)"].append(run_load(jobs, slots_fifo, slots=True))
        fresh = run_load(jobs, by_cost(None))
        rows["by cost, no history"].append(fresh)
        learnt = run_load(jobs, by_cost(history or learn(fresh.builds)))
        rows["by cost, learnt durations"].append(learnt)
        history = learn(learnt.builds)
    for name, results in rows.items():
        makespan = statistics.median(r.makespan for r in results)
        light = max(r.light_wait for r in results)
        print(
            f"  {name:30s} {makespan:6.2f} s  ({makespan / bound:.2f}x the bound)"
            f"  longest light wait {light:5.2f} s  policy CPU {statistics.median(r.place_cpu for r in results) * 1000:5.0f} ms"
            f"  (runs: {', '.join(f'{r.makespan:.2f}/{r.light_wait:.2f}' for r in results)})"
        )
    final = rows["by cost, learnt durations"]
    worst = max(r.makespan for r in final)
    light = max(r.light_wait for r in final)
    ok = worst <= GOAL_RATIO * bound and light <= GOAL_WAIT
    print(
        f"GOAL mixed load, learnt durations, worst of {runs}: makespan {worst:.2f} s ="
        f" {worst / bound:.3f}x the bare bound {bound:.2f} s (goal <= {GOAL_RATIO}x),"
        f" longest light wait {light:.2f} s (goal <= {GOAL_WAIT} s): {'met' if ok else 'MISSED'}"
    )
