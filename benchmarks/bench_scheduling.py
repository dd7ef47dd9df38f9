"""How well `sauci serve` keeps its build slots full: builds of unequal arrival
started the moment work or a free slot appears (issue 'Operations that tell
the truth', item 1).

    python benchmarks/bench_scheduling.py [--rounds 3] [--builds 20] [--slots 4]

A Server (sauci.app.server.build_server, in-process runner, local sandbox, SQLite)
on a temporary data dir gets ``--builds`` builds of one `sleep 0.5` step,
queued at once through its Scheduler; the time from queueing to the last
build recorded as ended (its ``build_finished``, emitted once the end is in
the store) is the figure. Baselines in the same run: the ideal
(builds x 0.5 s / slots) and ``--slots`` threads running the same
`bash -c 'sleep 0.5'` bare. Goal: within 1.03x of the ideal. The first round
makes the repository's workspace slots and is shown apart.

The repository is not registered with the server (``repos=[]``): a
registered one is polled, and the poll queues a build of its head that takes
a slot in the middle of a measured round (one round in three showed only
three builds starting at once, 1.12x instead of 1.08x). The builds name the
repository by path, as a push does.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from _sched_phases import Phases

from sauci.app.server import build_server
from sauci.core.config import Settings
from sauci.core.events import subscribe
from sauci.core.models import BuildRequest
from sauci.core.scheduler import Scheduler
from sauci.core.server import ServerOptions
from sauci.source.workspaces import wait_for_tidying
from sauci.storage import open_store

GIT = ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.com"]
NAP = 0.5


def make_repo(root: Path) -> Path:
    repo = root / "repo"
    repo.mkdir()
    (repo / ".sauci.yml").write_text(f"steps:\n  nap:\n    run: sleep {NAP}\n")
    for args in (["init", "-q", "-b", "main"], ["add", "."], ["commit", "-q", "-m", "x"]):
        subprocess.run([*GIT, *args], cwd=repo, check=True)
    return repo


def served_round(scheduler: Scheduler, store, repo: Path, builds: int) -> float:
    """Seconds from queueing ``builds`` builds to the last one recorded as ended.

    The end is seen from ``build_finished``, which the runner emits once the
    build's end is in the store (and checked there after the clock stops):
    polling the store every 2 ms, as this did before 2026-12-07, held the
    server's GIL for a seventh of the round (py-spy --gil) and slowed what
    it measured.
    """
    ended: set[int] = set()
    all_ended = threading.Event()
    ids: list[int] = []

    def on_event(name: str, fields: dict) -> None:
        build = fields.get("build")
        if name == "build_finished" and build is not None:
            ended.add(build.id)
            if len(ended) >= builds and ended.issuperset(ids):
                all_ended.set()

    unsubscribe = subscribe(on_event)
    try:
        start = time.perf_counter()
        ids.extend(
            scheduler.enqueue(BuildRequest(repo=str(repo), ref="refs/heads/main")).id
            for _ in range(builds)
        )
        while not all_ended.wait(0.5):
            if all(store.get_build(i).status.done for i in ids):  # an end not announced
                break
        took = time.perf_counter() - start
    finally:
        unsubscribe()
    failed = [i for i in ids if store.get_build(i).status.value != "passed"]
    assert not failed, f"builds did not pass: {failed}"
    return took


def bare_round(builds: int, slots: int) -> float:
    def worker(n: int) -> None:
        for _ in range(n):
            subprocess.run(["bash", "-eo", "pipefail", "-c", f"sleep {NAP}"], check=True)

    threads = [threading.Thread(target=worker, args=(builds // slots,)) for _ in range(slots)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--builds", type=int, default=20)
    parser.add_argument("--slots", type=int, default=4)
    parser.add_argument(
        "--phases", action="store_true", help="print each phase between two builds, and CPU time"
    )
    args = parser.parse_args()
    ideal = args.builds * NAP / args.slots
    with tempfile.TemporaryDirectory(prefix="sauci-bench-sched-") as name:
        root = Path(name)
        repo = make_repo(root)
        settings = Settings(data_dir=root / "data", sandbox="local")
        settings.data_dir.mkdir()
        store = open_store(f"sqlite:///{settings.data_dir / 'sauci.db'}")
        server = build_server(
            store=store,
            settings=settings,
            repos=[],  # not polled: see the docstring
            options=ServerOptions(max_builds=args.slots),
        )
        phases = Phases() if args.phases else None
        if phases is not None:
            phases.time_rounds(server)
        server.start()
        try:
            scheduler = Scheduler(store)
            first = served_round(scheduler, store, repo, args.builds)
            wait_for_tidying()
            if phases is not None:
                phases.reset()
            warm = []
            for _ in range(args.rounds):
                warm.append(served_round(scheduler, store, repo, args.builds))
                wait_for_tidying()
                if phases is not None:
                    phases.note_round(args.slots)
        finally:
            server.stop()
            store.close()
    bare = statistics.median(bare_round(args.builds, args.slots) for _ in range(args.rounds))
    served = statistics.median(warm)
    what = f"{args.builds} builds of `sleep {NAP}`, {args.slots} at a time, through the server"
    print(f"ideal (baseline)                      {ideal * 1000:8.0f} ms")
    print(
        f"bare: {args.slots} threads x `bash -c 'sleep {NAP}'`    {bare * 1000:8.0f} ms  {bare / ideal:.3f}x"
    )
    print(f"first round (workspace slots made)    {first * 1000:8.0f} ms  {first / ideal:.3f}x")
    print(
        f"{what} (median of {args.rounds}): {served * 1000:.0f} ms  "
        f"{served / ideal:.3f}x ideal  (goal <= 1.03x), {served / bare:.3f}x bare "
        f"({bare * 1000:.0f} ms, {bare / ideal:.3f}x ideal); rounds: "
        + ", ".join(f"{w / ideal:.3f}x" for w in warm)
    )
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")
    if phases is not None:
        print(f"phases of the {args.rounds} warm rounds:")
        print("\n".join(phases.report(args.builds * args.rounds)))


if __name__ == "__main__":
    main()
