"""Compute figures for "Compute the seed asks for": the mixed load under placement by cost.

Mixed load (item 2): 5 heavy builds (2 CPUs, 2 s) and 50 light ones (0.5 CPU,
0.2 s) on two workers of 2 CPUs, run in real time: each build is a thread that
sleeps its duration once :func:`sauci.core.placement.place` starts it, and the
dispatcher re-places on every arrival and every end, as the server does on
its events. The heavy builds come from one repository at t=0, the light ones
from another, one every 0.1 s. Printed beside the packing lower bound (total
CPU-seconds / total CPUs, and no earlier than the last arrival plus its
duration) and the old way in the same run: two slots per worker, FIFO.

    PYTHONPATH=$PWD python benchmarks/compute.py [--runs 3]
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from collections.abc import Callable

import attrs

from sauci.core.placement import WaitingBuild, WorkerRoom, place
from sauci.core.resources import Resources

GIB = 2**30
HEAVY = (Resources(cpus=2, memory=GIB), 2.0)
LIGHT = (Resources(cpus=0.5, memory=GIB // 4), 0.2)


@attrs.frozen
class Job:
    id: int
    repo: str
    cost: Resources
    seconds: float
    arrives: float


def mixed_load() -> list[Job]:
    jobs = [Job(i, "heavy", HEAVY[0], HEAVY[1], 0.0) for i in range(5)]
    jobs += [Job(100 + i, "light", LIGHT[0], LIGHT[1], 0.1 * i) for i in range(50)]
    return jobs


def lower_bound(jobs: list[Job], cpus: float) -> float:
    area = sum(j.cost.cpus * j.seconds for j in jobs) / cpus
    return max(area, max(j.arrives + j.seconds for j in jobs))


def by_cost(
    queue: list[WaitingBuild], rooms: list[WorkerRoom], served: dict[str, float], now: float
):  # type: ignore[no-untyped-def]
    return place(queue, rooms, served=served, now=now, hold_after=1.0, starve_after=10).starts


def slots_fifo(
    queue: list[WaitingBuild], rooms: list[WorkerRoom], served: dict[str, float], now: float
):  # type: ignore[no-untyped-def]
    """The old way: every build takes one of ``max_builds`` slots, first come first served."""
    starts = []
    free = {r.name: (r.max_builds or 2) - r.running for r in rooms}
    for build in sorted(queue, key=lambda b: (b.queued_at, b.id)):
        name = next((n for n, left in free.items() if left > 0), None)
        if name is None:
            break
        free[name] -= 1
        starts.append((build.id, name))
    return tuple(starts)


def run_load(
    jobs: list[Job], policy: Callable[..., tuple[tuple[int, str], ...]]
) -> tuple[float, float]:
    """Run ``jobs`` in real time under ``policy``; (makespan, longest light wait) in seconds."""
    capacity = Resources(cpus=2, memory=4 * GIB)
    rooms = {
        n: WorkerRoom(name=n, capacity=capacity, max_builds=2 if policy is slots_fifo else None)
        for n in ("w1", "w2")
    }
    byid = {j.id: j for j in jobs}
    waits: dict[int, float] = {}
    served: dict[str, float] = {}
    wake = threading.Condition()
    ended: list[tuple[int, str]] = []
    start = time.monotonic()
    queued: dict[int, WaitingBuild] = {}
    pending = sorted(jobs, key=lambda j: j.arrives)
    threads = []

    def finish(job: Job, worker: str) -> None:
        time.sleep(job.seconds)
        with wake:
            ended.append((job.id, worker))
            wake.notify()

    while pending or queued or len(waits) < len(jobs) or any(t.is_alive() for t in threads):
        with wake:
            now = time.monotonic() - start
            while pending and pending[0].arrives <= now:
                j = pending.pop(0)
                queued[j.id] = WaitingBuild(id=j.id, repo=j.repo, cost=j.cost, queued_at=j.arrives)
            for build_id, worker in ended:
                r, cost = rooms[worker], byid[build_id].cost
                # Charged in CPU-seconds once known, as the server does when a build ends.
                repo = byid[build_id].repo
                served[repo] = served.get(repo, 0.0) + cost.cpus * byid[build_id].seconds
                rooms[worker] = attrs.evolve(
                    r,
                    used_cpus=r.used_cpus - cost.cpus,
                    used_memory=r.used_memory - cost.memory,
                    running=r.running - 1,
                )
            ended.clear()
            for build_id, worker in policy(
                list(queued.values()), list(rooms.values()), served, now
            ):
                job = byid[build_id]
                del queued[build_id]
                rooms[worker] = rooms[worker].with_build(job.cost)
                waits[build_id] = now - job.arrives
                t = threading.Thread(target=finish, args=(job, worker))
                t.start()
                threads.append(t)
            if len(waits) == len(jobs) and not any(t.is_alive() for t in threads):
                break
            timeout = (pending[0].arrives - now) if pending else 0.5
            if not ended:
                wake.wait(max(timeout, 0.0))
    makespan = time.monotonic() - start
    light = max(w for i, w in waits.items() if byid[i].repo == "light")
    return makespan, light


def mixed_load_figures(runs: int) -> None:
    jobs = mixed_load()
    bound = lower_bound(jobs, cpus=4)
    print(
        "mixed load: 5 x (2 CPUs, 2 s) + 50 x (0.5 CPU, 0.2 s, one per 0.1 s), 2 workers x 2 CPUs"
    )
    print(f"  packing lower bound            {bound:6.2f} s")
    for name, policy in (("slots, FIFO (old)", slots_fifo), ("placement by cost", by_cost)):
        results = [run_load(jobs, policy) for _ in range(runs)]
        makespan = statistics.median(r[0] for r in results)
        light = max(r[1] for r in results)
        print(
            f"  {name:28s} {makespan:6.2f} s  ({makespan / bound:.2f}x the bound)"
            f"  longest light wait {light:5.2f} s  (over {runs} runs)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    mixed_load_figures(args.runs)


if __name__ == "__main__":
    main()
