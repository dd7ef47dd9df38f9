"""`sauci serve` with the web UI from two trees, restarted in turns: the start
figures of issue 22 item 6 as differences within pairs, which a shared 2-core
machine's load moves far less than two medians taken minutes apart.

    python benchmarks/bench_serve_pairs.py OTHER_TREE [--pairs 8]

Each tree has its own data dir over the same bare repository (started once
first: the database is made, then every start is a restart, as bench_serve.py's
"restart" rows). In each pair, in an order alternating from pair to pair, each
tree's `sauci serve` is started and timed to its "watching" and "web UI on"
lines (wall, and the process's CPU when each line came), "/" is fetched, and
after 2 s idle its VmRSS is read. ``ready_tail`` is the time from its
``server_started`` log line to its "watching" line: the server's last steps
before the line, which a thread started before it would slow. Then, per
tree, a probe in a fresh interpreter imports what `sauci serve` imports
before its UI and times ``serve_ui`` on that data dir in its own thread's
CPU time (``ui_thread_cpu``):
the process's CPU at a line is read in ticks of 10 ms and holds the server's
threads too, this holds the UI's start alone at a microsecond's resolution.
Each pair also times the bare baselines:
`python -c pass` and a bare `python -m http.server` to its first answer.
Printed: each tree's medians, the medians of the differences (this tree minus
OTHER_TREE), the baselines, and the load average before and after.
"""

from __future__ import annotations

import argparse
import compileall
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(HERE / "benchmarks"))

from bench_hook import setup  # noqa: E402
from bench_serve import Serve, bare_http_server, bare_python_start, http_get  # noqa: E402

FIGURES = ("ready", "ready_tail", "ready_cpu", "ui", "ui_cpu", "ui_thread_cpu", "rss")

# serve_ui on the data dir, after the imports `sauci serve` makes before it.
PROBE = """
import sys, time
from pathlib import Path
from sauci.app.serve import run_server
from sauci.core.config import Settings
from sauci.storage import open_store
settings = Settings(data_dir=Path(sys.argv[1]), sandbox="local")
store = open_store(settings.store_url)
start = time.thread_time()
from sauci.contrib.django.project import serve_ui
handle = serve_ui(settings, port=0, store=store, quiet=True)
print((time.thread_time() - start) * 1000)
handle.stop()
"""
UNITS = {"rss": "MB"}


def ui_thread_cpu(tree: Path, data: Path) -> float:
    """Milliseconds of CPU the UI's start takes in its own thread (PROBE)."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(data)],
        env=env,
        cwd=tree,  # not this tree's checkout: `-c` puts the working directory first on sys.path
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return float(out.stdout.split()[-1])


def one(tree: Path, data: Path, bare: Path) -> dict[str, float]:
    srv = Serve(data, bare, ui=True, tree=tree)
    try:
        ready = srv.wait_line("sauci serve: watching") - srv.t0
        # The server's last steps before its line, which a thread started
        # before the line would slow (the lines are stamped as they are read).
        tail = srv.wait_line("sauci serve: watching") - srv.wait_line("server_started")
        ui = srv.wait_line("sauci: web UI on") - srv.t0
        status = http_get(f"http://127.0.0.1:{srv.port}/")
        assert status == 200, f"{tree}: / answered {status}"
        time.sleep(2.0)
        return {
            "ready": ready * 1000,
            "ready_tail": tail * 1000,
            "ready_cpu": srv.cpu_when("sauci serve: watching") * 1000,
            "ui": ui * 1000,
            "ui_cpu": srv.cpu_when("sauci: web UI on") * 1000,
            "rss": srv.rss_kib() / 1024,
        }
    finally:
        srv.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("other", type=Path, help="the tree to compare with (e.g. /work/main)")
    parser.add_argument("--pairs", type=int, default=8)
    args = parser.parse_args()
    trees = (HERE, args.other.resolve())
    for tree in trees:  # PYTHONDONTWRITEBYTECODE=1: else edited modules compile on every run
        compileall.compile_dir(str(tree / "sauci"), quiet=1)
    print(f"load average before: {os.getloadavg()}", flush=True)
    runs: dict[Path, list[dict[str, float]]] = {tree: [] for tree in trees}
    bare_py: list[float] = []
    bare_http: list[float] = []
    with tempfile.TemporaryDirectory(prefix="sauci-bench-serve-pairs-") as name:
        tmp = Path(name)
        bare, _clone = setup(tmp)
        datas = {tree: tmp / f"data-{n}" for n, tree in enumerate(trees)}
        for tree in trees:
            one(tree, datas[tree], bare)  # the first start: databases made
        for n in range(args.pairs):
            for tree in trees if n % 2 == 0 else trees[::-1]:
                runs[tree].append(one(tree, datas[tree], bare))
            for tree in trees if n % 2 else trees[::-1]:
                runs[tree][-1]["ui_thread_cpu"] = ui_thread_cpu(tree, datas[tree])
            bare_py.append(bare_python_start(1) * 1000)
            bare_http.append(bare_http_server()[0] * 1000)
            here, other = runs[trees[0]][-1], runs[trees[1]][-1]
            print(
                f"pair {n + 1}: UI on {here['ui']:.0f} / {other['ui']:.0f} ms, "
                f"CPU {here['ui_cpu']:.0f} / {other['ui_cpu']:.0f} ms, "
                f"UI thread {here['ui_thread_cpu']:.0f} / {other['ui_thread_cpu']:.0f} ms, "
                f"RSS {here['rss']:.1f} / {other['rss']:.1f} MB",
                flush=True,
            )
    print(f"load average after: {os.getloadavg()}")
    print(f"{'figure (median)':<34}{'this tree':>12}{'other':>12}{'diff':>12}")
    for key in FIGURES:
        unit = UNITS.get(key, "ms")
        mine = statistics.median(r[key] for r in runs[trees[0]])
        theirs = statistics.median(r[key] for r in runs[trees[1]])
        diff = statistics.median(a[key] - b[key] for a, b in zip(*runs.values(), strict=True))
        print(f"{key + ' (' + unit + ')':<34}{mine:>12.1f}{theirs:>12.1f}{diff:>+12.1f}")
    print(f"bare: python -c pass {statistics.median(bare_py):.1f} ms, ", end="")
    print(f"http.server to its first answer {statistics.median(bare_http):.1f} ms")
    print(f"this tree {trees[0]}, other {trees[1]}, {args.pairs} pairs")


if __name__ == "__main__":
    main()
