"""Core engine figures, each beside its bare baseline measured in the same run.

    python benchmarks/bench_core.py [--repeat N] [--only one|chain|log|builds|cli ...]
        [--against OTHER_TREE]

Prints one line per figure: SauCI's time, the baseline's, the difference or
ratio, and the target from the core engine issue. Uses the embedded defaults
(SQLiteStore in a temporary data dir, LocalSandbox).
"""

from __future__ import annotations

import argparse
import compileall
import os
import resource
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from sauci import BuildRequest, Pipeline, Step
from sauci.app import LocalRunner
from sauci.core.config import Settings
from sauci.source.workspaces import wait_for_tidying
from sauci.storage import open_store

GIT = ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.com"]


def best(fn, repeat: int) -> float:
    """Median of ``repeat`` timings, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def paired(sauci_fn, bare_fn, repeat: int) -> tuple[float, float]:
    """Medians of ``repeat`` timings of each, interleaved (sauci, bare, sauci, ...)
    after one warm-up of each, so that load changes on a shared machine hit both."""
    sauci_fn()
    bare_fn()
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeat):
        for fn, out in ((sauci_fn, times[0]), (bare_fn, times[1])):
            start = time.perf_counter()
            fn()
            out.append(time.perf_counter() - start)
    return statistics.median(times[0]), statistics.median(times[1])


def report(name: str, value: float, base: float, target: str, *, ratio: bool = False) -> None:
    cmp = f"{value / base:.3f}x bare" if ratio else f"{(value - base) * 1000:+.1f} ms vs bare"
    print(
        f"{name:<44} {value * 1000:9.1f} ms   bare {base * 1000:8.1f} ms   {cmp:<20} target: {target}"
    )


def make_runner(tmp: Path, name: str) -> LocalRunner:
    settings = Settings(data_dir=tmp / name)
    settings.data_dir.mkdir(parents=True)
    store = open_store(f"sqlite:///{settings.data_dir / 'sauci.db'}")
    return LocalRunner(store=store, settings=settings, secrets={})


def bench_one_step(tmp: Path, repeat: int) -> None:
    runner = make_runner(tmp, "one")
    ws = tmp / "ws1"
    ws.mkdir()
    pipeline = Pipeline(steps=[Step(name="t", run="true", shell=["true"])])
    bash_pipeline = Pipeline(steps=[Step(name="t", run="true")])
    sauci, bare = paired(
        lambda: runner.run_pipeline(pipeline, ws, BuildRequest(repo="bench")),
        lambda: subprocess.run(["true"]),
        repeat,
    )
    report("one-step `true`, build start to recorded", sauci, bare, "<= +20 ms")
    sauci_bash, bare_bash = paired(
        lambda: runner.run_pipeline(bash_pipeline, ws, BuildRequest(repo="bench")),
        lambda: subprocess.run(["bash", "-eo", "pipefail", "-c", "true"]),
        repeat,
    )
    report("  same, through bash -eo pipefail", sauci_bash, bare_bash, "(informative)")


def bench_chain(tmp: Path, repeat: int) -> None:
    runner = make_runner(tmp, "chain")
    ws = tmp / "ws2"
    ws.mkdir()
    pipeline = Pipeline(steps=[Step(name=f"s{i}", run="true", shell=["true"]) for i in range(20)])
    sauci, bare = paired(
        lambda: runner.run_pipeline(pipeline, ws, BuildRequest(repo="bench")),
        lambda: [subprocess.run(["true"]) for _ in range(20)],
        max(5, repeat),  # a chain takes ~50 ms: as many runs as the other figures
    )
    per_step = (sauci - bare) / 20
    print(
        f"{'20-step chain of `true`':<44} {sauci * 1000:9.1f} ms   bare {bare * 1000:8.1f} ms   "
        f"{per_step * 1000:+.2f} ms/step        target: <= +2 ms/step"
    )


def bench_big_log(tmp: Path, repeat: int) -> None:
    runner = make_runner(tmp, "log")
    ws = tmp / "ws3"
    ws.mkdir()
    # 50 MB of 100-byte lines, like a chatty test suite.
    cmd = "yes 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx' | head -c 50000000"
    runs = iter(range(1_000_000))
    pipeline = Pipeline(steps=[Step(name="flood", run=cmd)])

    def one() -> None:
        outcome = runner.run_pipeline(pipeline, ws, BuildRequest(repo="bench"))
        step = outcome.steps[0]
        assert step.log_bytes == 50_000_000, step
        assert runner.store.log_size(outcome.build.id, "flood") == 50_000_000
        tail = runner.store.read_log(outcome.build.id, "flood", 50_000_000 - 101)
        with open(str(step.log_path), "rb") as fh:
            fh.seek(-101, os.SEEK_END)
            assert tail == fh.read(), tail

    def bare() -> None:
        # A new file each time, as SauCI writes a new log per build: writing
        # over the last run's 50 MB file would add ~50 ms of truncation.
        subprocess.run(["bash", "-c", f"{cmd} > {tmp / f'bare-{next(runs)}.log'}"])

    sauci, bare_time = paired(one, bare, max(3, repeat // 5))
    report("50 MB log to disk and store", sauci, bare_time, "<= 1.5x", ratio=True)


def on_four_threads(worker: Callable[[], None]) -> float:
    """Seconds for four threads running ``worker`` to all end."""
    start = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - start


def bench_concurrent_builds(tmp: Path, rounds: int) -> None:
    repo = tmp / "repo"
    repo.mkdir()
    (repo / ".sauci.yml").write_text("steps:\n  nap:\n    run: sleep 0.5\n")
    subprocess.run([*GIT, "init", "-q", "-b", "main"], cwd=repo, check=True)
    subprocess.run([*GIT, "add", "."], cwd=repo, check=True)
    subprocess.run([*GIT, "commit", "-q", "-m", "x"], cwd=repo, check=True)
    runner = make_runner(tmp, "many")

    def one_round() -> float:
        for _ in range(20):
            runner.store.create_build(
                BuildRequest(repo=str(repo), ref="refs/heads/main", event="push")
            )

        def worker() -> None:
            while runner.run_next() is not None:
                pass

        return on_four_threads(worker)

    # The first round makes the workspace slots (a server that has built the
    # repository before has them): reported on its own, then warm rounds.
    first = one_round()
    wait_for_tidying()
    warm = []
    for _ in range(rounds):
        warm.append(one_round())
        wait_for_tidying()
    passed = sum(b.status.value == "passed" for b in runner.store.list_builds(limit=1000))
    assert passed == 20 * (rounds + 1), passed

    def bare_round() -> float:
        def worker() -> None:
            for _ in range(5):
                subprocess.run(["bash", "-eo", "pipefail", "-c", "sleep 0.5"], check=True)

        return on_four_threads(worker)

    report(
        "  bare: 4 threads x 5 `bash -c 'sleep 0.5'`",
        statistics.median(bare_round() for _ in range(rounds)),
        2.5,
        "(informative)",
        ratio=True,
    )
    report("  same, first round (slots made)", first, 2.5, "(informative)", ratio=True)
    report(
        f"20 builds of `sleep 0.5`, 4 at a time (median of {rounds})",
        statistics.median(warm),
        2.5,
        "<= 1.05x ideal",
        ratio=True,
    )


def bench_cli(tmp: Path, repeat: int, against: Path | None = None) -> None:
    repo = tmp / "clirepo"
    repo.mkdir()
    (repo / ".sauci.yml").write_text("steps:\n  t:\n    run: 'true'\n")
    subprocess.run([*GIT, "init", "-q", "-b", "main"], cwd=repo, check=True)
    subprocess.run([*GIT, "add", "."], cwd=repo, check=True)
    subprocess.run([*GIT, "commit", "-q", "-m", "x"], cwd=repo, check=True)
    # The console script next to the interpreter: its shebang is the real
    # interpreter. shutil.which("sauci") finds a pyenv shim first here (a bash
    # script running `pyenv exec`), which adds 100+ ms that are not SauCI's.
    script = Path(sys.executable).with_name("sauci")
    exe = str(script) if script.exists() else shutil.which("sauci")
    cmd = [exe, "run", "--quiet"] if exe else [sys.executable, "-m", "sauci", "run", "--quiet"]
    # With PYTHONDONTWRITEBYTECODE=1, modules edited since their last
    # compile would be compiled from source on every run.
    compileall.compile_dir(str(Path(__file__).resolve().parents[1] / "sauci"), quiet=1)
    if against is not None:
        compileall.compile_dir(str(against / "sauci"), quiet=1)
    env = {**os.environ, "SAUCI_DATA_DIR": str(tmp / "clidata")}
    source_root = Path(__file__).resolve().parents[1]
    site_packages = sysconfig.get_paths()["purelib"]

    def run(*extra: str) -> None:
        subprocess.run([*cmd, *extra], cwd=repo, env=env, stdout=subprocess.DEVNULL, check=True)

    # Both interpreter baselines in the same interleaved run: `python -c pass`
    # pays this environment's .pth files as SauCI does; `python -S` does not.
    cpu: dict[str, list[float]] = {}
    runs = interleaved(
        {
            "sauci": run,
            "python": lambda: subprocess.run([sys.executable, "-c", "pass"]),
            "python -S": lambda: subprocess.run([sys.executable, "-S", "-c", "pass"]),
            "commit": lambda: run("--commit", "HEAD"),
            "python -m": lambda: subprocess.run(
                [sys.executable, "-m", "sauci", "run", "--quiet"],
                cwd=repo,
                env=env,
                stdout=subprocess.DEVNULL,
                check=True,
            ),
            # Another tree (a checkout before a change), started the same
            # way as "python -m", in the same interleaved rounds.
            **(
                {
                    "against": lambda: subprocess.run(
                        [sys.executable, "-m", "sauci", "run", "--quiet"],
                        cwd=repo,
                        env={**env, "PYTHONPATH": str(against)},
                        stdout=subprocess.DEVNULL,
                        check=True,
                    )
                }
                if against is not None
                else {}
            ),
            # As on a machine without this environment's .pth files: no
            # site, the source tree and site-packages on PYTHONPATH.
            "no .pth": lambda: subprocess.run(
                [sys.executable, "-S", "-m", "sauci", "run", "--quiet"],
                cwd=repo,
                env={**env, "PYTHONPATH": f"{source_root}{os.pathsep}{site_packages}"},
                stdout=subprocess.DEVNULL,
                check=True,
            ),
        },
        repeat,
        cpu,
    )
    took = {name: statistics.median(values) for name, values in runs.items()}
    spent = {name: statistics.median(values) for name, values in cpu.items()}
    report(
        "`sauci run` one-step `true`, shell to exit",
        took["sauci"],
        took["python"],
        "<= 120 ms total",
    )
    print(
        f"{'':44} {took['sauci'] / took['python']:.2f}x python -c pass; "
        f"python -S -c pass {took['python -S'] * 1000:.1f} ms"
    )
    print(
        f"{'':44} best of {repeat}: sauci run {min(runs['sauci']) * 1000:.1f} ms, "
        f"python -c pass {min(runs['python']) * 1000:.1f} ms, "
        f"python -S run {min(runs['no .pth']) * 1000:.1f} ms, "
        f"python -S -c pass {min(runs['python -S']) * 1000:.1f} ms"
    )
    print(
        f"{'':44} CPU (user+sys, median): sauci run {spent['sauci'] * 1000:.1f} ms, "
        f"python -c pass {spent['python'] * 1000:.1f} ms "
        f"({spent['sauci'] / spent['python']:.2f}x), --commit HEAD {spent['commit'] * 1000:.1f} ms; "
        f"load {os.getloadavg()[0]:.1f}"
    )
    # Informative: a clean checkout of HEAD instead of the working tree's
    # copy, and started as `python -m sauci` instead of the console script.
    report("  same, --commit HEAD", took["commit"], took["python"], "(informative)")
    report("  same, python -m sauci run", took["python -m"], took["python"], "(informative)")
    report("  same, python -S (no .pth files)", took["no .pth"], took["python -S"], "(informative)")
    if against is not None:
        print(
            f"{'':44} python -m sauci run: this tree {took['python -m'] * 1000:.1f} ms "
            f"(CPU {spent['python -m'] * 1000:.1f}), {against} {took['against'] * 1000:.1f} ms "
            f"(CPU {spent['against'] * 1000:.1f}); best {min(runs['python -m']) * 1000:.1f} / "
            f"{min(runs['against']) * 1000:.1f} ms"
        )


def interleaved(
    fns: dict[str, Callable[[], object]], repeat: int, cpu: dict[str, list[float]] | None = None
) -> dict[str, list[float]]:
    """``repeat`` timings of each, taken in turns after one warm-up of each.
    With ``cpu``, also the user+sys CPU time of the processes each one ran
    (``RUSAGE_CHILDREN``): a loaded machine inflates wall times, not CPU times."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    if cpu is not None:
        cpu.update({name: [] for name in fns})
    for round_ in range(repeat + 1):
        for name, fn in fns.items():
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            fn()
            took = time.perf_counter() - start
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            if round_:
                times[name].append(took)
                if cpu is not None:
                    used = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
                    cpu[name].append(used)
    return times


FIGURES = ("one", "chain", "log", "builds", "cli")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument(
        "--only", action="append", choices=FIGURES, help="measure only these (repeatable)"
    )
    parser.add_argument(
        "--against",
        type=Path,
        metavar="TREE",
        help="also time `python -m sauci run` with TREE on PYTHONPATH (a checkout "
        "before a change), interleaved with this tree's (cli figure)",
    )
    args = parser.parse_args()
    only = set(args.only or FIGURES)
    with tempfile.TemporaryDirectory(prefix="sauci-bench-") as tmp_name:
        tmp = Path(tmp_name)
        if "one" in only:
            bench_one_step(tmp, args.repeat)
        if "chain" in only:
            bench_chain(tmp, args.repeat)
        if "log" in only:
            bench_big_log(tmp, args.repeat)
        if "builds" in only:
            bench_concurrent_builds(tmp, max(1, args.repeat // 5))
        if "cli" in only:
            bench_cli(tmp, args.repeat, args.against)


if __name__ == "__main__":
    main()
