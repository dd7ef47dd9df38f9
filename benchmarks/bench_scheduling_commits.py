"""benchmarks/bench_scheduling.py with every build of a commit of its own, in a
repository of 1000 files: each build's workspace slot is reset by a `git
checkout` (the same commit built again needs none), as when pushes queue up
behind busy slots (issue 22, item 1; docs/performance.md, session 17).

    python benchmarks/bench_scheduling_commits.py

Prints the median of 3 warm rounds of 20 builds of `sleep 0.5`, 4 at a time,
against the ideal (2500 ms), and the phases of bench_scheduling.py --phases.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import bench_scheduling as B
from _sched_phases import Phases

from sauci.app.server import build_server
from sauci.core.config import Settings
from sauci.core.events import subscribe
from sauci.core.models import BuildRequest
from sauci.core.scheduler import Scheduler
from sauci.core.server import ServerOptions
from sauci.source.workspaces import wait_for_tidying
from sauci.storage import open_store

ROUNDS, N = 3, 20


def served(scheduler, store, repo, shas):
    ended, ids, done = set(), [], threading.Event()

    def on(name, f):
        b = f.get("build")
        if name == "build_finished" and b is not None:
            ended.add(b.id)
            if len(ended) >= len(shas) and ended.issuperset(ids):
                done.set()

    un = subscribe(on)
    try:
        t0 = time.perf_counter()
        ids.extend(
            scheduler.enqueue(BuildRequest(repo=str(repo), ref="refs/heads/main", sha=s)).id
            for s in shas
        )
        done.wait(60)
        took = time.perf_counter() - t0
    finally:
        un()
    assert all(store.get_build(i).status.value == "passed" for i in ids)
    return took


with tempfile.TemporaryDirectory(prefix="sched22-commits-") as name:
    root = Path(name)
    repo = B.make_repo(root)
    for d in range(40):
        (repo / f"d{d}").mkdir()
        for f in range(25):
            (repo / f"d{d}" / f"f{f}.txt").write_text("x" * 2000)
    shas = []
    for i in range(N * (ROUNDS + 1)):
        (repo / "d0" / "f0.txt").write_text(f"commit {i}\n" * 200)
        (repo / f"d{i % 40}" / "f1.txt").write_text(f"c {i}\n" * 300)
        subprocess.run([*B.GIT, "add", "-A"], cwd=repo, check=True)
        subprocess.run([*B.GIT, "commit", "-q", "-m", f"c{i}"], cwd=repo, check=True)
        shas.append(
            subprocess.run(
                ["git", "rev-parse", "HEAD"], cwd=repo, check=True, capture_output=True, text=True
            ).stdout.strip()
        )
    settings = Settings(data_dir=root / "data", sandbox="local")
    settings.data_dir.mkdir()
    store = open_store(f"sqlite:///{settings.data_dir / 'sauci.db'}")
    server = build_server(
        store=store, settings=settings, repos=[], options=ServerOptions(max_builds=4)
    )
    phases = Phases()
    server.start()
    try:
        sch = Scheduler(store)
        served(sch, store, repo, shas[:N])
        wait_for_tidying()
        phases.reset()
        warm = []
        for r in range(ROUNDS):
            warm.append(served(sch, store, repo, shas[N * (r + 1) : N * (r + 2)]))
            wait_for_tidying()
            phases.note_round(4)
    finally:
        server.stop()
        store.close()
print(
    f"20 builds of 20 commits, 1000 files: median {statistics.median(warm) * 1000:.0f} ms {statistics.median(warm) / 2.5:.3f}x ideal; rounds "
    + ", ".join(f"{w / 2.5:.3f}x" for w in warm)
    + f"; load {os.getloadavg()[0]:.2f}"
)
print(
    "\n".join(
        line
        for line in phases.report(N * ROUNDS)
        if "claimed ->" in line or "step's end" in line or "first enqueue" in line
    )
)
