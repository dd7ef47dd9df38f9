"""Distributed runs (issue 7), each figure beside a baseline measured in the same run.

    python benchmarks/bench_distributed.py [--builds 20] [--scale-builds 40] [--store URL]

(a) Dispatch overhead: a one-step `true` build, from Scheduler.enqueue to the
    build's final record in the store (polled every 2 ms), one build at a
    time, median of --builds (after one warm-up). Baseline: the same through
    the in-process local runner (`sauci serve` without a broker). Through the
    broker: the server dispatches over Redis to one `sauci worker` on this
    machine. Targets: at most 50 ms slower than the baseline (issue 7), at
    most 30 ms in all (issue 22).
(b) Scaling: --scale-builds builds of `sleep 1`, all queued at once, on two
    workers with 2 slots each; from the first enqueue to the last build's
    recorded end (the store polled only every 0.1 s meanwhile). Baseline:
    the ideal, builds x 1 s / 4 slots (10 s for 40). Targets: within 1.1x
    of it (issue 7), 1.05x (issue 22).

Both use the same store (default: an SQLite file, which every process on
this machine shares; pass a PostgreSQL URL to measure that) and the local
sandbox. redis-server is started on a free 127.0.0.1 port.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sauci.app.server import build_server  # noqa: E402
from sauci.core.config import Settings  # noqa: E402
from sauci.core.models import BuildRequest  # noqa: E402
from sauci.core.scheduler import Scheduler  # noqa: E402
from sauci.core.server import ServerOptions  # noqa: E402
from sauci.sandbox.local import LocalSandbox  # noqa: E402
from sauci.storage import open_store  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_repo(path: Path, run: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@x"}
    env.update(GIT_COMMITTER_NAME="b", GIT_COMMITTER_EMAIL="b@x")
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True)
    (path / ".sauci.yml").write_text(f"steps:\n  s:\n    run: {run}\n")
    subprocess.run(["git", "-C", str(path), "add", "."], check=True)
    subprocess.run(["git", "-C", str(path), "commit", "-qm", "x"], check=True, env=env)
    return str(path)


def wait_done(store, build_id: int, timeout: float = 120.0, poll: float = 0.002) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        build = store.get_build(build_id)
        if build.status.done:
            if build.status.value != "passed":
                raise SystemExit(f"build {build_id} {build.status.value}: {build.reason}")
            return time.perf_counter()
        time.sleep(poll)
    raise SystemExit(f"build {build_id} did not end within {timeout} s")


def one_at_a_time(store, repo: str, count: int, ids: list[int] | None = None) -> list[float]:
    scheduler = Scheduler(store)
    times = []
    for i in range(count + 1):
        t0 = time.perf_counter()
        build = scheduler.enqueue(BuildRequest(repo=repo, ref="refs/heads/main", event="manual"))
        elapsed = wait_done(store, build.id) - t0
        if i:  # the first is a warm-up
            times.append(elapsed)
            if ids is not None:
                ids.append(build.id)
    return times


def phases(store, ids: list[int]) -> None:
    """Each phase of the builds ``ids`` from the times the store holds (one clock:
    this machine's), median and max: where dispatch time goes."""
    found: dict[str, list[float]] = {}
    for build_id in ids:
        build = store.get_build(build_id)
        (step,) = store.list_steps(build_id)
        marks = [
            ("queued -> claimed by the worker", build.queued_at, build.started_at),
            ("claimed -> step started (workspace, pipeline)", build.started_at, step.started_at),
            ("step started -> ended", step.started_at, step.finished_at),
            ("step ended -> build recorded ended", step.finished_at, build.finished_at),
        ]
        for label, a, b in marks:
            if a is not None and b is not None:
                found.setdefault(label, []).append(b - a)
    for label, values in found.items():
        print(
            f"      {label:<48} median {statistics.median(values) * 1000:6.1f} ms"
            f"  max {max(values) * 1000:6.1f} ms"
        )


def refill(store, ids: list[int]) -> None:
    """How soon a worker's freed slot takes its next build: from each build's
    recorded end to the next claim on the same worker (when it had builds waiting)."""
    builds = [store.get_build(i) for i in ids]
    gaps = []
    for worker in {b.claimed_by for b in builds}:
        mine = sorted((b for b in builds if b.claimed_by == worker), key=lambda b: b.started_at)
        starts = [b.started_at for b in mine]
        for b in mine:
            later = [s for s in starts if s >= b.finished_at]
            if later:
                gaps.append(min(later) - b.finished_at)
    if gaps:
        print(
            f"      {'build ended -> next claimed on its worker':<48} median "
            f"{statistics.median(gaps) * 1000:6.1f} ms  max {max(gaps) * 1000:6.1f} ms"
        )


def over_ideal(store, ids: list[int], wall0: float) -> None:
    """Where each slot's time over the ideal went: the builds of each worker laid
    out on its slots (a build takes the slot that freed first before its claim),
    and per slot the sum of each phase; printed as the mean over the slots."""
    builds = [store.get_build(i) for i in ids]
    steps = {i: store.list_steps(i)[0] for i in ids}
    sums: dict[str, list[float]] = {}
    for worker in {b.claimed_by for b in builds}:
        chains: list[list] = []
        for b in sorted((b for b in builds if b.claimed_by == worker), key=lambda b: b.started_at):
            free = [c for c in chains if c[-1].finished_at <= b.started_at]
            if free and (len(chains) >= 2 or len(free) == len(chains)):
                min(free, key=lambda c: c[-1].finished_at).append(b)
            else:
                chains.append([b])
        for chain in chains:
            parts = {
                "first enqueue -> first claim": chain[0].started_at - wall0,
                "first claim -> its step started": steps[chain[0].id].started_at
                - chain[0].started_at,
                "claim -> step started": 0.0,
                "step over 1 s": 0.0,
                "step ended -> build ended": 0.0,
                "build ended -> next claim": 0.0,
            }
            for n, b in enumerate(chain):
                step = steps[b.id]
                parts["claim -> step started"] += step.started_at - b.started_at
                parts["step over 1 s"] += step.finished_at - step.started_at - 1.0
                parts["step ended -> build ended"] += b.finished_at - step.finished_at
                if n + 1 < len(chain):
                    parts["build ended -> next claim"] += chain[n + 1].started_at - b.finished_at
            parts["slot's end over its builds x 1 s"] = chain[-1].finished_at - wall0 - len(chain)
            for label, value in parts.items():
                sums.setdefault(label, []).append(value)
    print(f"      per slot, summed over its builds (mean of {len(sums['step over 1 s'])} slots):")
    for label, values in sums.items():
        print(f"        {label:<46} {statistics.mean(values) * 1000:7.1f} ms")


def start_worker(name: str, broker: str, store: str, data: Path) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "sauci", "worker", "--broker", broker]
    cmd += ["--store", store, "--name", name, "--slots", "2", "--sandbox", "local"]
    cmd += ["--data-dir", str(data / name)]
    log = (data / f"{name}.log").open("wb")
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)


def wait_online(store, *names: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        states = {w.name: w.state for w in store.list_workers()}
        if all(states.get(n) == "online" for n in names):
            time.sleep(1.0)  # the Celery consumer starts just after the record
            return
        time.sleep(0.05)
    raise SystemExit(f"workers {names} did not come online")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--builds", type=int, default=20)
    parser.add_argument("--scale-builds", type=int, default=40)
    parser.add_argument("--store", help="store URL (default: SQLite in a temporary directory)")
    args = parser.parse_args()
    redis_bin = shutil.which("redis-server")
    if redis_bin is None:
        raise SystemExit("redis-server is needed (apt-get install -y redis-server)")
    tmp = Path(tempfile.mkdtemp(prefix="sauci-bench-dist-"))
    port = free_port()
    redis = subprocess.Popen(
        [redis_bin, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    broker = f"redis://127.0.0.1:{port}/0"
    store_url = args.store or f"sqlite:///{tmp / 'sauci.db'}"
    workers: list[subprocess.Popen[bytes]] = []
    try:
        store = open_store(store_url)
        quick = make_repo(tmp / "quick", "'true'")
        sleepy = make_repo(tmp / "sleepy", "sleep 1")

        settings = Settings(data_dir=tmp / "local")
        local = build_server(
            store=store,
            settings=settings,
            options=ServerOptions(max_builds=2),
            sandbox=LocalSandbox(grace=settings.grace),
        )
        local.start()
        baseline = one_at_a_time(store, quick, args.builds)
        local.stop()

        # Named after this run: a worker sweeps the step cgroups its name's
        # earlier lives left (sauci.distributed.worker_cgroup_prefix), so two
        # runs on one machine under the same names killed each other's steps.
        one, two = f"bench{os.getpid()}-1", f"bench{os.getpid()}-2"
        workers.append(start_worker(one, broker, store_url, tmp))
        wait_online(store, one)
        remote = build_server(
            store=store,
            settings=Settings(data_dir=tmp / "server", broker=broker, sandbox="local"),
        )
        remote.start()
        sent: list[int] = []
        through = one_at_a_time(store, quick, args.builds, sent)

        base_ms = statistics.median(baseline) * 1000
        broker_ms = statistics.median(through) * 1000
        print(f"(a) one-step `true` build, enqueue to recorded end, median of {args.builds}:")
        print(f"    local runner (baseline)  {base_ms:7.1f} ms")
        print(
            f"    through the broker       {broker_ms:7.1f} ms  "
            f"({broker_ms - base_ms:+.1f} ms, {broker_ms / base_ms:.2f}x; "
            f"targets: issue 7 <= +50 ms, issue 22 <= 30 ms: "
            f"{'met' if broker_ms <= 30 else 'NOT met'})"
        )
        print(f"    its phases (load average {os.getloadavg()[0]:.2f}):")
        phases(store, sent)

        workers.append(start_worker(two, broker, store_url, tmp))
        wait_online(store, one, two)
        scheduler = Scheduler(store)
        wall0 = time.time()
        ids = [
            scheduler.enqueue(BuildRequest(repo=sleepy, ref="refs/heads/main", event="manual")).id
            for _ in range(args.scale_builds)
        ]
        # The end is the last build's recorded end (this machine's clock, as
        # wall0), read once every build is done: polling every build every 2 ms
        # took the CPU and the interpreter lock from the server's dispatcher
        # in this process, and from the workers, for the whole run.
        for build_id in ids:
            wait_done(store, build_id, poll=0.1)
        wall = max(store.get_build(i).finished_at or 0.0 for i in ids) - wall0
        ideal = args.scale_builds * 1.0 / 4
        used = {store.get_build(i).claimed_by for i in ids}
        print(f"(b) {args.scale_builds} builds of `sleep 1`, 2 workers x 2 slots:")
        print(f"    ideal (baseline)         {ideal:7.2f} s")
        print(
            f"    measured                 {wall:7.2f} s  ({wall / ideal:.3f}x; targets: issue 7 "
            f"<= 1.1x, issue 22 <= 1.05x: {'met' if wall / ideal <= 1.05 else 'NOT met'}; "
            f"workers used: {', '.join(sorted(str(u) for u in used))})"
        )
        print(f"    its phases (load average {os.getloadavg()[0]:.2f}):")
        starts = sorted(store.get_build(i).started_at for i in ids)
        print(
            f"      {'first enqueue -> 4 slots claimed':<48} {(starts[3] - wall0) * 1000:6.1f} ms"
        )
        refill(store, ids)
        phases(store, ids)
        over_ideal(store, ids, wall0)
        remote.stop()
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            try:
                worker.wait(30)
            except subprocess.TimeoutExpired:
                worker.kill()
        redis.terminate()
        redis.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
