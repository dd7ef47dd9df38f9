"""What opt-in usage analytics cost a `sauci run`, beside the same run with them off.

    python benchmarks/bench_analytics.py [--repeat N] [--first N] [--against OTHER_TREE]

A one-step pipeline is run by the `sauci` command (a new process each time),
paired and interleaved with the same run under SAUCI_ANALYTICS=off. The
Mixpanel endpoint is a real local HTTP server that refuses (nothing listens),
hangs (accepts and never answers) or answers 500. Prints each median, the
difference from analytics off (the median of the pairs' differences, in wall
time and in CPU time, which is steadier on a busy machine), and the goal of
issue 'Operations that tell the truth' (an unreachable endpoint within 5 ms
of off; the first run that finds it down at most a 200 ms flush: ``--first``
such runs, each in a new data directory, each paired with a run with
analytics off, the median of their differences). With
``--against``, the same cases run with OTHER_TREE on PYTHONPATH (a checkout
before a change), interleaved with this tree's in the same rounds, each
beside its own analytics-off run.
"""

from __future__ import annotations

import argparse
import compileall
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

from bench_core import interleaved

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


def _timed(fn: Callable[[], None]) -> tuple[float, float]:
    """Wall and CPU time (user+sys of the processes it ran) of ``fn()``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    fn()
    took = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return took, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # 15 paired runs left the difference within about 5 ms of noise (the
    # size of the goal itself); 40 keep it to about 2 ms on a quiet machine.
    parser.add_argument("--repeat", type=int, default=40)
    parser.add_argument("--first", type=int, default=5, help="first runs per case (default 5)")
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
            print(
                f"sauci run, one step; median of {args.repeat}, paired with analytics off "
                f"(the difference: median of the pairs'; load {os.getloadavg()[0]:.1f})"
            )
            for i, (name, env) in enumerate(cases.items()):
                if "SAUCI_MIXPANEL_HOST" in env:
                    env = {**env, "SAUCI_MIXPANEL_TOKEN": "bench-token"}
                first = _first_runs(repo, tmp / f"first{i}", trees, offs, env, args.first)
                fns: dict[str, Callable[[], None]] = {}
                for n, (label, tree) in enumerate(trees.items()):
                    data = tmp / f"case{i}-{n}"
                    on = _runner(repo, data, tree, **env)
                    _runner(repo, data, tree, SAUCI_ANALYTICS="off")()  # data dir made
                    on()  # the first run finds the endpoint down; the rest know it
                    fns[f"on{label}"] = on
                    # Off in the same data dir: two dirs' stores differ by more
                    # than the analytics cost (10-20 ms of CPU at load 2).
                    fns[f"off{label}"] = _runner(repo, data, tree, SAUCI_ANALYTICS="off")
                cpu: dict[str, list[float]] = {}
                runs = interleaved(fns, args.repeat, cpu)
                for label in trees:
                    on_, off_ = f"on{label}", f"off{label}"
                    with_, without = (statistics.median(runs[k]) for k in (on_, off_))
                    # Medians of the differences within each pair (on, off run
                    # in turn): steadier than the difference of the medians;
                    # the CPU time (user+sys of the run's processes) is
                    # steadier still on a busy machine, where wall times wander.
                    wall = statistics.median(
                        a - b for a, b in zip(runs[on_], runs[off_], strict=True)
                    )
                    used = statistics.median(
                        a - b for a, b in zip(cpu[on_], cpu[off_], strict=True)
                    )
                    goal = "<= +5 ms" if "Mixpanel" in name else "(informative)"
                    print(
                        f"{name + label:<40} {with_ * 1000:7.1f} ms  off {without * 1000:7.1f} ms  "
                        f"{wall * 1000:+6.1f} ms  goal {goal};  CPU {used * 1000:+5.1f} ms;  "
                        f"first runs {first[label][0] * 1000:+.0f} ms, "
                        f"CPU {first[label][1] * 1000:+.0f} ms",
                        flush=True,
                    )
        finally:
            hanging.close()
            failing.close()


if __name__ == "__main__":
    main()
