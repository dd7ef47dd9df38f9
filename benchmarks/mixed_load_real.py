"""The mixed load through the real distributed path ("Compute the seed asks for",
item 2): ``python benchmarks/compute.py --mixed-load --real [--runs N]``.

5 heavy builds (``resources: {cpus: 2}``, ``sleep 2``) queued at t=0 and 50
light ones (``cpus: 0.5``, ``sleep 0.2``), one every 0.1 s, on two real
``sauci worker`` processes of ``--cpus 2`` each, placed by the server's
CeleryRunner (this process) through Redis, with an SQLite store every process
shares and steps in the local sandbox. Printed: the makespan (first enqueue
to last ``finished_at``) beside the packing lower bound (total CPU-seconds /
total CPUs, the bare figure: no per-build cost at all), the longest wait of a
light build (``started_at - queued_at``), and the per-build overhead (a
build's run time minus its sleep), which the bound does not count; beside
it, the bound with the builds' measured run times (what no placement can
beat on this machine). The server places with ``drain_wait`` 1.45 s, the
wait bound of the in-process figure (mixed_load.WAIT_BOUND; the server's
default is 1 s).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mixed_load import WAIT_BOUND
from scale_to_zero import _free_port, _wait

from sauci.core.config import Settings
from sauci.core.models import BuildRequest
from sauci.core.scheduler import Scheduler
from sauci.core.server import ServerOptions

HEAVY = "resources: {cpus: 2, memory: 1GiB}\nsteps:\n  work: {run: 'sleep 2'}\n"
LIGHT = "resources: {cpus: 0.5, memory: 256MiB}\nsteps:\n  work: {run: 'sleep 0.2'}\n"
BOUND = (5 * 2 * 2.0 + 50 * 0.5 * 0.2) / 4  # CPU-seconds / CPUs: 6.25 s


def _repo(path: Path, pipeline: str) -> str:
    path.mkdir()
    env = {**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@x"}
    env.update(GIT_COMMITTER_NAME="b", GIT_COMMITTER_EMAIL="b@x")
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True)
    (path / ".sauci.yml").write_text(pipeline)
    subprocess.run(["git", "-C", str(path), "add", "."], check=True)
    subprocess.run(["git", "-C", str(path), "commit", "-qm", "b"], check=True, env=env)
    return str(path)


def _one_run(store, heavy: str, light: str) -> tuple[float, float, float]:
    scheduler = Scheduler(store)
    start = time.time()
    ids = [
        scheduler.enqueue(BuildRequest(repo=heavy, ref="refs/heads/main", params={"n": str(i)})).id
        for i in range(5)
    ]
    lights = []
    for i in range(50):
        time.sleep(max(start + 0.1 * i - time.time(), 0))
        request = BuildRequest(repo=light, ref="refs/heads/main", params={"n": str(i)})
        lights.append(scheduler.enqueue(request).id)
    # Every 50 ms, not _wait's 5: this process is the server being measured,
    # and its dispatcher would share the interpreter with 200 store reads a
    # second (the times come from the store, not from when this loop saw them).
    builds = [_wait(lambda i=i: (b := store.get_build(i)).status.done and b, f"build {i}", 120,
                    every=0.05)
              for i in ids + lights]  # fmt: skip
    bad = [(b.id, b.status.value, b.reason) for b in builds if b.status.value != "passed"]
    if bad:
        raise SystemExit(f"builds did not pass: {bad[:3]}")
    makespan = max(b.finished_at for b in builds) - start
    light_wait = max(b.started_at - b.queued_at for b in builds if b.id in lights)
    overhead = statistics.median(
        (b.finished_at - b.started_at) - (2.0 if b.id in ids else 0.2) for b in builds
    )
    steps = {b.id: store.list_steps(b.id)[0] for b in builds}
    before = statistics.median(steps[b.id].started_at - b.started_at for b in builds)
    after = statistics.median(b.finished_at - steps[b.id].finished_at for b in builds)
    step = statistics.median(
        (s.finished_at - s.started_at) - (2.0 if i in ids else 0.2) for i, s in steps.items()
    )
    first = min(b.started_at - b.queued_at for b in builds)
    measured = sum((2 if b.id in ids else 0.5) * (b.finished_at - b.started_at) for b in builds) / 4
    heavy = ", ".join(f"{b.started_at - start:.2f}" for b in builds if b.id in ids)
    print(f"    queue -> claim at least {first * 1000:.0f} ms, claim -> step {before * 1000:.0f} ms, "
          f"step beyond its sleep {step * 1000:.0f} ms, "
          f"step end -> build end {after * 1000:.0f} ms (medians)")  # fmt: skip
    print(f"    makespan {makespan:.2f} s, {makespan / measured:.3f}x the bound with the builds' "
          f"measured run times ({measured:.2f} s); light wait {light_wait:.2f} s; "
          f"heavy builds started at {heavy} s")  # fmt: skip
    return makespan, light_wait, overhead


def mixed_load_real(runs: int) -> None:
    from sauci.app.server import build_server
    from sauci.storage import open_store

    redis_bin = shutil.which("redis-server")
    if redis_bin is None:
        raise SystemExit("redis-server is needed (apt-get install -y redis-server)")
    area = Path(tempfile.mkdtemp(prefix="sauci-mixed-", dir="/tmp"))
    port = _free_port()
    redis = subprocess.Popen(
        [redis_bin, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    broker = f"redis://127.0.0.1:{port}/0"
    url = f"sqlite:///{area / 'sauci.db'}"
    store = open_store(url)
    heavy, light = _repo(area / "heavy", HEAVY), _repo(area / "light", LIGHT)
    env = {**os.environ, "SAUCI_STORE": url, "SAUCI_BROKER": broker}
    # Names of their own: a worker sweeps the step cgroups of its name at
    # start, and another "w1" on this machine would end these steps.
    names = (f"mixed{os.getpid()}-w1", f"mixed{os.getpid()}-w2")
    flags = ["--sandbox", "local", "--cpus", "2", "--memory", "4GiB", "--slots", "4"]
    flags += ["--heartbeat-interval", "0.5"]
    command = [sys.executable, "-m", "sauci", "worker"]
    workers = [
        subprocess.Popen(
            [*command, "--name", name, *flags, "--data-dir", str(area / name)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for name in names
    ]
    server = None
    try:
        _wait(lambda: len(store.list_workers()) == 2, "two workers", 60)
        settings = Settings(
            data_dir=area / "srv", store=url, broker=broker, sandbox="local", drain_wait=WAIT_BOUND
        )
        server = build_server(
            store=store, settings=settings, options=ServerOptions(poll_interval=3600)
        )
        server.start()
        time.sleep(1.0)
        results = [_one_run(store, heavy, light) for _ in range(runs)]
        makespan = statistics.median(r[0] for r in results)
        wait = max(r[1] for r in results)
        overhead = statistics.median(r[2] for r in results)
        print(f"  {'real workers (bare: the bound)':28s} {makespan:6.2f} s  "
              f"({makespan / BOUND:.2f}x the bound)  longest light wait {wait:5.2f} s  "
              f"per-build overhead {overhead * 1000:.0f} ms  (over {runs} runs)")  # fmt: skip
    finally:
        if server is not None:
            server.stop(timeout=10)
        for worker in workers:
            worker.terminate()
        for worker in workers:
            with contextlib.suppress(subprocess.TimeoutExpired):
                worker.wait(20)
        redis.terminate()
        redis.wait(10)
        store.close()
        shutil.rmtree(area, ignore_errors=True)
