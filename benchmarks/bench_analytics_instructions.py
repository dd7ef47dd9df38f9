"""What opt-in usage analytics add to a `sauci run`, in instructions counted by
valgrind (cachegrind, no cache simulation): the same on a busy machine as on a
quiet one, where `bench_analytics.py`'s wall and CPU differences of a few
milliseconds have 95% intervals 30-40 ms wide.

    python benchmarks/bench_analytics_instructions.py [--repeat N] [--phases] [OTHER_TREE ...]

Counts the `sauci run --quiet` process of a one-step pipeline (its threads
included, as valgrind runs them one at a time; git and the step are not
traced), with PYTHONHASHSEED=0, with analytics off and with each case of the
goal in its steady state: the Mixpanel endpoint refused, hanging or answering
500, known to be down (a first run, not counted, found it so), and the local
sink alone. Each case has a data directory of its own, shared with its
analytics-off runs; the runs alternate (off, on, on, off, ...) and the
difference is that of the medians. Printed beside it: the difference as a
share of `python -c pass`'s instructions and in milliseconds at this
machine's rate (`python -c pass`'s median CPU time over its instructions,
timed in the same run), the goal being within 5 ms of off. With OTHER_TREE, the
same for each tree on PYTHONPATH. ``--phases`` first counts the analytics'
own phases inside one process per tree (the import of the package, the
install, a build's two events, the close). About 15-30 s per counted run;
needs valgrind.
"""

from __future__ import annotations

import argparse
import compileall
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_analytics import _Endpoint, _refused_url
from bench_cli_pairs import one_step_repo

VALGRIND = ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null"]
HERE = Path(__file__).resolve().parents[1]
RUN = ["-m", "sauci", "run", "--quiet"]


def _env(tree: Path, data: Path, extra: dict[str, str]) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(tree), "SAUCI_DATA_DIR": str(data), **extra}
    env.pop("SAUCI_STORE", None)
    env["PYTHONHASHSEED"] = "0"
    return env


def instructions(args: list[str], env: dict[str, str], cwd: Path) -> int:
    out = subprocess.run(
        [*VALGRIND, sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True
    )
    found = re.search(r"I\s+refs:\s+([\d,]+)", out.stderr)
    if out.returncode or found is None:
        raise SystemExit(f"valgrind failed ({out.returncode}):\n{out.stderr[-2000:]}")
    return int(found.group(1).replace(",", ""))


def plain(args: list[str], env: dict[str, str], cwd: Path) -> None:
    """A run outside valgrind (makes the data directory, marks the endpoint down)."""
    subprocess.run([sys.executable, *args], cwd=cwd, env=env, check=True, capture_output=True)


# `sauci run`'s analytics, stopped after phase N (0: none; 1: the import of the
# package; 2: install, with the sinks, the salt and the cli_command event; 3: a
# build's two events; 4: close), after the imports and the store write of a run
# with analytics off. The garbage collector is off in this probe only: a
# collection falling in one phase or the next would move about 0.5 M
# instructions between them.
_PHASES = """
import gc; gc.disable()
import sys, time, types
from pathlib import Path
stop = int(sys.argv[2])
import sauci.cli, sauci.cli._local, sauci.app, yaml
from sauci.app.stores import settings_store
from sauci.core.config import Settings
from sauci.core.events import emit
from sauci.core.models import Event
import sauci.monitoring
data = Path(sys.argv[1])
store = settings_store(Settings(data_dir=data))
store.add_event(Event(kind="bench", at=time.time(), actor="bench", data={}))
build = types.SimpleNamespace(repo="/r", event="push", attempt=1, started_at=2.0,
                              queued_at=1.0, status="passed", duration=0.1)
if stop >= 1:
    import sauci.monitoring.analytics
if stop >= 2:
    handle = sauci.monitoring.install(store=store, component="run", command="run", data_dir=data)
if stop >= 3:
    emit("build_started", build=build)
    emit("build_finished", build=build)
if stop >= 4:
    handle.close()
store.close()
"""
PHASES = ("import", "install", "2 events", "close")


def phases(tree: Path, data: Path, cwd: Path) -> None:
    """Print the instructions of each phase in one process (``_PHASES``), the
    Mixpanel endpoint known down."""
    env = _env(tree, data, {"SAUCI_MIXPANEL_HOST": _refused_url(), "SAUCI_MIXPANEL_TOKEN": "t"})
    plain(["-c", _PHASES, str(data), "4"], env, cwd)  # the store made
    counts = []
    for n in range(5):
        # The endpoint found down again just before: the marker lasts 5 minutes,
        # and five runs under valgrind on a loaded machine can take longer.
        plain(["-c", _PHASES, str(data), "4"], env, cwd)
        counts.append(instructions(["-c", _PHASES, str(data), str(n)], env, cwd))
    parts = [
        f"{name} {(b - a) / 1e6:+.2f} M"
        for name, a, b in zip(PHASES, counts[:-1], counts[1:], strict=True)
    ]
    print(
        f"{tree}: in process: {'; '.join(parts)}; all {(counts[-1] - counts[0]) / 1e6:+.2f} M",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("others", nargs="*", type=Path, help="trees to count too")
    parser.add_argument("--repeat", type=int, default=2, help="counted runs per side (default 2)")
    parser.add_argument(
        "--phases",
        action="store_true",
        help="also count the analytics' phases inside one process per tree (import, "
        "install, a build's two events, close; the endpoint known down)",
    )
    args = parser.parse_args()
    trees = [HERE, *(t.resolve() for t in args.others)]
    for tree in trees:  # PYTHONDONTWRITEBYTECODE=1: else edited modules compile on every run
        compileall.compile_dir(str(tree / "sauci"), quiet=1)
    hanging = _Endpoint(status=None)
    failing = _Endpoint(status=500)
    cases = {
        "local sink only (SAUCI_ANALYTICS=on)": {"SAUCI_ANALYTICS": "on"},
        "Mixpanel refused, known down": {"SAUCI_MIXPANEL_HOST": _refused_url()},
        "Mixpanel hangs, known down": {"SAUCI_MIXPANEL_HOST": hanging.url},
        "Mixpanel answers 500, known down": {"SAUCI_MIXPANEL_HOST": failing.url},
    }
    try:
        with tempfile.TemporaryDirectory() as tmp_name:
            tmp = Path(tmp_name)
            repo = one_step_repo(tmp / "repo")
            bare_env = _env(HERE, tmp / "bare", {})
            bare = instructions(["-c", "pass"], bare_env, repo)
            walls, cpus = [], []
            for _ in range(10):
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                start = time.perf_counter()
                subprocess.run([sys.executable, "-c", "pass"], check=True)
                walls.append(time.perf_counter() - start)
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpus.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
            # CPU rather than wall: at a load of 7, python -c pass took 157 ms of
            # wall here, most of it waiting for a core.
            ms_per_instruction = statistics.median(cpus) * 1000 / bare
            print(
                f"python -c pass: {bare / 1e6:.1f} M instructions, "
                f"{statistics.median(cpus) * 1000:.1f} ms of CPU, "
                f"{statistics.median(walls) * 1000:.1f} ms of wall (load "
                f"{os.getloadavg()[0]:.1f}): {1 / ms_per_instruction / 1e6:.2f} M instructions "
                "per ms of CPU",
                flush=True,
            )
            if args.phases:
                for n, tree in enumerate(trees):
                    phases(tree, tmp / f"phases-{n}", repo)
            for n, tree in enumerate(trees):
                for i, (name, case) in enumerate(cases.items()):
                    if "SAUCI_MIXPANEL_HOST" in case:
                        case = {**case, "SAUCI_MIXPANEL_TOKEN": "bench-token"}
                    data = tmp / f"{n}-{i}"
                    off_env = _env(tree, data, {"SAUCI_ANALYTICS": "off"})
                    on_env = _env(tree, data, case)
                    plain(RUN, off_env, repo)  # the data dir and its store made
                    plain(RUN, on_env, repo)  # the first run finds the endpoint down
                    on: list[int] = []
                    off: list[int] = []
                    for k in range(args.repeat):
                        first, second = (off, on) if k % 2 == 0 else (on, off)
                        for side in (first, second):
                            env = off_env if side is off else on_env
                            if side is on:  # the 5 minutes' marker renewed (see phases)
                                plain(RUN, on_env, repo)
                            side.append(instructions(RUN, env, repo))
                    diff = statistics.median(on) - statistics.median(off)
                    print(
                        f"{tree}: {name:<36} off {statistics.median(off) / 1e6:7.1f} M, "
                        f"on {statistics.median(on) / 1e6:7.1f} M: {diff / 1e6:+6.2f} M "
                        f"({diff / bare * 100:+.1f}% of python -c pass, "
                        f"{diff * ms_per_instruction:+.1f} ms of CPU here; goal <= +5 ms)",
                        flush=True,
                    )
    finally:
        hanging.close()
        failing.close()


if __name__ == "__main__":
    main()
