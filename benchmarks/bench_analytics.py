"""What opt-in usage analytics cost a `sauci run`, beside the same run with them off.

    python benchmarks/bench_analytics.py [--repeat N] [--first N] [--phases N] [--against TREE]

A one-step pipeline is run by the `sauci` command (a new process each time),
paired and interleaved with the same run under SAUCI_ANALYTICS=off. The
Mixpanel endpoint is a real local HTTP server that refuses (nothing listens),
hangs (accepts and never answers) or answers 500. Prints each median, wall
and CPU time (user+sys of the run's processes, steadier on a busy machine),
the difference from analytics off (the median of the pairs' differences, with
its 95% confidence interval: the order statistics of the differences, which
assume nothing of their distribution), and the goal of issue 'Operations
that tell the truth' (an unreachable endpoint within 5 ms of off; the first
run that finds it down at most a 200 ms flush: ``--first`` such runs, each in
a new data directory, each paired with a run with analytics off, the median
of their differences). The two runs of a pair alternate in order (on, off,
then off, on), so that whatever the second run of a pair gains or loses
(caches the first warmed, the load it left) falls on both sides, and the
cases take their turns in every round (not one case after another), so that
a load that grows during the run weighs on each case alike. With
``--against``, the same cases run with OTHER_TREE on PYTHONPATH (a checkout
before a change), interleaved with this tree's in the same rounds, each
beside its own analytics-off run. First, ``--phases`` processes per tree time
the analytics' own work inside the process (the import of the package, the
install, a build's two events, the close; CPU and wall) with the endpoint
known down: what the goal is about, without the rest of a run's noise.
"""

from __future__ import annotations

import argparse
import compileall
import itertools
import json
import math
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

GIT = ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.com"]


class _Endpoint:
    """A local stand-in for Mixpanel that hangs or answers ``status``."""

    def __init__(self, *, status: int | None) -> None:
        release = self.release = threading.Event()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if status is None:
                    release.wait(60)
                    return
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def _refused_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def _repo(tmp: Path) -> Path:
    repo = tmp / "repo"
    repo.mkdir()
    (repo / ".sauci.yml").write_text("steps:\n  t:\n    run: 'true'\n")
    subprocess.run([*GIT, "init", "-q"], cwd=repo, check=True)
    subprocess.run([*GIT, "add", "."], cwd=repo, check=True)
    subprocess.run([*GIT, "commit", "-qm", "bench"], cwd=repo, check=True)
    return repo


def _runner(repo: Path, data: Path, tree: Path | None = None, **env: str):
    full = {**os.environ, "SAUCI_DATA_DIR": str(data), **env}
    full.pop("SAUCI_STORE", None)
    if tree is not None:
        full["PYTHONPATH"] = str(tree)
    argv = [sys.executable, "-m", "sauci", "run", str(repo), "--quiet"]

    def run() -> None:
        # Not in this checkout: `python -m` puts the working directory first on
        # sys.path, which would run this tree's sauci whatever PYTHONPATH says.
        subprocess.run(argv, env=full, check=True, stdout=subprocess.DEVNULL, cwd=repo)

    return run


def _bare() -> None:
    subprocess.run([sys.executable, "-c", "pass"], check=True)


def _timed(fn: Callable[[], None]) -> tuple[float, float]:
    """Wall and CPU time (user+sys of the processes it ran) of ``fn()``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    fn()
    took = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return took, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def _pairs(
    pairs: dict[str, tuple[Callable[[], None], Callable[[], None]]], repeat: int
) -> dict[str, list[tuple[float, float, float, float]]]:
    """Per label, ``repeat`` timings (wall on, wall off, CPU on, CPU off) of its
    (on, off) pair, after one warm-up of each; the order within a pair and the
    order of the labels alternate from one round to the next."""
    out: dict[str, list[tuple[float, float, float, float]]] = {label: [] for label in pairs}
    labels = list(pairs)
    for round_ in range(repeat + 1):
        flip = round_ % 2 == 1
        for label in reversed(labels) if flip else labels:
            on, off = pairs[label]
            if flip:
                off_t, on_t = _timed(off), _timed(on)
            else:
                on_t, off_t = _timed(on), _timed(off)
            if round_:
                out[label].append((on_t[0], off_t[0], on_t[1], off_t[1]))
    return out


def _median_ci(values: list[float]) -> tuple[float, float, float]:
    """The median of ``values`` and its 95% confidence interval (distribution-free:
    the order statistics n/2 -+ 0.98 sqrt(n), from the binomial's normal
    approximation)."""
    ordered = sorted(values)
    n = len(ordered)
    half = 0.98 * math.sqrt(n)
    low = max(0, math.floor(n / 2 - half) - 1)
    high = min(n - 1, math.ceil(n / 2 + half))
    return statistics.median(ordered), ordered[low], ordered[high]


# One process's analytics on `sauci run`'s path, timed inside it (CPU of the
# whole process, threads included, and wall): the import of the package, the
# install (sinks, salt, the cli_command event), a build's two events, close.
_PHASES = """
import json, sys, time, types
from pathlib import Path
from sauci.app.stores import settings_store
from sauci.core.config import Settings
from sauci.core.events import emit
from sauci.core.models import Event
import sauci.monitoring  # imported by `sauci run` with analytics off too
data = Path(sys.argv[1])
store = settings_store(Settings(data_dir=data))
store.add_event(Event(kind="bench", at=time.time(), actor="bench", data={}))  # the run's writes
build = types.SimpleNamespace(repo="/r", event="push", attempt=1, started_at=2.0,
                              queued_at=1.0, status="passed", duration=0.1)
marks = [(time.process_time(), time.perf_counter())]
import sauci.monitoring.analytics
marks.append((time.process_time(), time.perf_counter()))
handle = sauci.monitoring.install(store=store, component="run", command="run", data_dir=data)
marks.append((time.process_time(), time.perf_counter()))
emit("build_started", build=build)
emit("build_finished", build=build)
marks.append((time.process_time(), time.perf_counter()))
handle.close()
marks.append((time.process_time(), time.perf_counter()))
store.close()
print(json.dumps(marks))
"""
PHASES = ("import", "install", "2 events", "close")


def _phases(trees: dict[str, Path | None], tmp: Path, env: dict[str, str], count: int) -> None:
    """Print, per tree, the median CPU / wall of each phase over ``count`` processes
    (the trees in turns), the endpoint known down (a first process marked it)."""
    found: dict[str, list[list[tuple[float, float]]]] = {label: [] for label in trees}
    for k in range(count + 1):
        for n, (label, tree) in enumerate(trees.items()):
            full = {**os.environ, **env}
            full.pop("SAUCI_STORE", None)
            if tree is not None:
                full["PYTHONPATH"] = str(tree)
            argv = [sys.executable, "-c", _PHASES, str(tmp / f"phases{n}")]
            done = subprocess.run(argv, env=full, check=True, capture_output=True, text=True)
            if k:  # the first marks the endpoint down
                marks = json.loads(done.stdout)
                found[label].append(
                    [(b[0] - a[0], b[1] - a[1]) for a, b in itertools.pairwise(marks)]
                )
    for label, rows in found.items():
        parts = []
        for i, phase in enumerate(PHASES):
            cpu = statistics.median(r[i][0] for r in rows) * 1000
            wall = statistics.median(r[i][1] for r in rows) * 1000
            parts.append(f"{phase} {cpu:.2f} / {wall:.2f}")
        total_cpu = statistics.median(sum(p[0] for p in r) for r in rows) * 1000
        total_wall = statistics.median(sum(p[1] for p in r) for r in rows) * 1000
        print(
            f"  in process{label}, CPU / wall ms: {'; '.join(parts)}; "
            f"all {total_cpu:.2f} / {total_wall:.2f}",
            flush=True,
        )


def _first_runs(
    repo: Path,
    tmp: Path,
    trees: dict[str, Path | None],
    offs: dict[str, Callable[[], None]],
    env: dict[str, str],
    count: int,
) -> dict[str, tuple[float, float]]:
    """Per tree, the median difference (wall, CPU) of a first run with analytics on,
    in a data directory of its own (nothing known of the endpoint yet), over the
    run with analytics off made beside it."""
    diffs: dict[str, list[tuple[float, float]]] = {label: [] for label in trees}
    for k in range(count):
        for n, (label, tree) in enumerate(trees.items()):
            data = tmp / f"{n}-{k}"
            _runner(repo, data, tree, SAUCI_ANALYTICS="off")()  # data dir made
            on = _timed(_runner(repo, data, tree, **env))
            off = _timed(offs[label])
            diffs[label].append((on[0] - off[0], on[1] - off[1]))
    return {
        label: (
            statistics.median(d[0] for d in pairs),
            statistics.median(d[1] for d in pairs),
        )
        for label, pairs in diffs.items()
    }


def _ms(median_ci: tuple[float, float, float]) -> str:
    median, low, high = (x * 1000 for x in median_ci)
    return f"{median:+5.1f} ms [{low:+.1f}, {high:+.1f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # 15 paired runs left the difference within about 5 ms of noise (the
    # size of the goal itself); 40 kept it to about 2 ms on a quiet machine,
    # but not on a busy one (the printed interval says how wide it is).
    parser.add_argument("--repeat", type=int, default=60)
    parser.add_argument("--first", type=int, default=5, help="first runs per case (default 5)")
    parser.add_argument(
        "--phases",
        type=int,
        default=20,
        metavar="N",
        help="time the analytics' phases inside N processes per tree, endpoint known down "
        "(default 20; 0: skip)",
    )
    parser.add_argument(
        "--against",
        type=Path,
        metavar="TREE",
        help="also run every case with TREE on PYTHONPATH, interleaved with this tree's",
    )
    args = parser.parse_args()
    # The package the runs import (PYTHONPATH first), compiled: with
    # PYTHONDONTWRITEBYTECODE=1, a module edited since its last compile would
    # be compiled from source on every run (+5 ms for the analytics modules).
    import sauci

    here = Path(sauci.__file__).parent
    compileall.compile_dir(str(here), quiet=1)
    trees: dict[str, Path | None] = {"": None}
    if args.against is not None:
        compileall.compile_dir(str(args.against / "sauci"), quiet=1)
        trees = {"": here.parent, f" [{args.against.name}]": args.against}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        repo = _repo(tmp)
        offs = {
            label: _runner(repo, tmp / f"off{n}", tree, SAUCI_ANALYTICS="off")
            for n, (label, tree) in enumerate(trees.items())
        }
        hanging = _Endpoint(status=None)
        failing = _Endpoint(status=500)
        try:
            cases = {
                "local sink only (SAUCI_ANALYTICS=on)": {"SAUCI_ANALYTICS": "on"},
                "Mixpanel refused (nothing listens)": {"SAUCI_MIXPANEL_HOST": _refused_url()},
                "Mixpanel hangs": {"SAUCI_MIXPANEL_HOST": hanging.url},
                "Mixpanel answers 500": {"SAUCI_MIXPANEL_HOST": failing.url},
            }
            bare = [_timed(_bare)[0] for _ in range(10)]
            print(
                f"sauci run, one step; median of {args.repeat}, paired with analytics off "
                f"(the difference: median of the pairs' [95% interval]; load "
                f"{os.getloadavg()[0]:.1f}; `python -c pass` {statistics.median(bare) * 1000:.1f} ms)"
            )
            if args.phases:
                known_down = {
                    "SAUCI_MIXPANEL_HOST": _refused_url(),
                    "SAUCI_MIXPANEL_TOKEN": "bench-token",
                }
                _phases(trees, tmp, known_down, args.phases)
            # Every case's pairs are timed in the same rounds, so a load that
            # grows during the run (another process starting) weighs on each
            # case alike instead of on the last one.
            pairs: dict[str, tuple[Callable[[], None], Callable[[], None]]] = {}
            firsts: dict[str, tuple[float, float]] = {}
            goals: dict[str, str] = {}
            for i, (name, env) in enumerate(cases.items()):
                if "SAUCI_MIXPANEL_HOST" in env:
                    env = {**env, "SAUCI_MIXPANEL_TOKEN": "bench-token"}
                first = _first_runs(repo, tmp / f"first{i}", trees, offs, env, args.first)
                for n, (label, tree) in enumerate(trees.items()):
                    data = tmp / f"case{i}-{n}"
                    on = _runner(repo, data, tree, **env)
                    _runner(repo, data, tree, SAUCI_ANALYTICS="off")()  # data dir made
                    on()  # the first run finds the endpoint down; the rest know it
                    # Off in the same data dir: two dirs' stores differ by more
                    # than the analytics cost (10-20 ms of CPU at load 2).
                    pairs[name + label] = (on, _runner(repo, data, tree, SAUCI_ANALYTICS="off"))
                    firsts[name + label] = first[label]
                    goals[name + label] = "<= +5 ms" if "Mixpanel" in name else "(informative)"
            for label, runs in _pairs(pairs, args.repeat).items():
                wall_on, wall_off, cpu_on, cpu_off = (
                    statistics.median(r[k] for r in runs) for k in range(4)
                )
                # Medians of the differences within each pair: steadier
                # than the difference of the medians.
                wall = _median_ci([r[0] - r[1] for r in runs])
                used = _median_ci([r[2] - r[3] for r in runs])
                print(
                    f"{label:<40} on {wall_on * 1000:6.1f} ms (CPU "
                    f"{cpu_on * 1000:5.1f}), off {wall_off * 1000:6.1f} ms (CPU "
                    f"{cpu_off * 1000:5.1f});  on - off: wall {_ms(wall)}, "
                    f"CPU {_ms(used)};  goal {goals[label]};  "
                    f"first runs {firsts[label][0] * 1000:+.0f} ms, "
                    f"CPU {firsts[label][1] * 1000:+.0f} ms",
                    flush=True,
                )
            print(f"load {os.getloadavg()[0]:.1f} at the end")
        finally:
            hanging.close()
            failing.close()


if __name__ == "__main__":
    main()
