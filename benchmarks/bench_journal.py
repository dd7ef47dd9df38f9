"""What a build's journal (sauci.core.journal) costs: CPU time of this process
per build, with the journal and without it, beside the bare baseline; and
what the log checksum (sauci.core.logcheck) costs a LogSink per MiB.

    python benchmarks/bench_journal.py [--repeat N]

Runs bench_core's two figures (a one-step build of `true`, a 20-step chain
of `true`) on the embedded SQLite store, interleaved: journal on, journal off
(``BuildJournals.open`` made a no-op), and the bare commands run with
subprocess. CPU time is ``time.process_time()`` (all of this process's
threads, not the steps' own processes); wall time is printed beside it.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from sauci import BuildRequest, Pipeline, Step
from sauci.app import LocalRunner
from sauci.core.config import Settings
from sauci.core.journal import BuildJournals
from sauci.core.logcheck import LogChecksum, checksum_path, log_file_changed
from sauci.core.logsink import LogSink
from sauci.core.models import Status, StepRun
from sauci.storage import MemoryStore, open_store


def _runner(tmp: Path, name: str) -> LocalRunner:
    settings = Settings(data_dir=tmp / name)
    settings.data_dir.mkdir(parents=True)
    store = open_store(f"sqlite:///{settings.data_dir / 'sauci.db'}")
    return LocalRunner(store=store, settings=settings, secrets={})


@contextlib.contextmanager
def _no_journal(_self: BuildJournals, _build: object) -> Iterator[None]:
    yield


def _measure(fns: dict[str, Callable[[], object]], repeat: int) -> dict[str, tuple[float, float]]:
    """Median (cpu, wall) seconds of each, interleaved, after one warm-up each."""
    for fn in fns.values():
        fn()
    times: dict[str, list[tuple[float, float]]] = {k: [] for k in fns}
    order = list(fns.items())
    for round_ in range(repeat):
        # Each takes its turn first: whatever the first of a round pays is shared.
        for key, fn in order[round_ % len(order) :] + order[: round_ % len(order)]:
            cpu, wall = time.process_time(), time.perf_counter()
            fn()
            times[key].append((time.process_time() - cpu, time.perf_counter() - wall))
    return {
        k: (statistics.median(c for c, _ in v), statistics.median(w for _, w in v))
        for k, v in times.items()
    }


def _figure(tmp: Path, name: str, steps: int, repeat: int) -> None:
    on, off = _runner(tmp, f"{name}-on"), _runner(tmp, f"{name}-off")
    ws = tmp / f"ws-{name}"
    ws.mkdir()
    pipeline = Pipeline(
        steps=[Step(name=f"s{i}", run="true", shell=["true"]) for i in range(steps)]
    )
    real_open = BuildJournals.open

    def without() -> None:
        BuildJournals.open = _no_journal  # type: ignore[assignment,method-assign]
        try:
            off.run_pipeline(pipeline, ws, BuildRequest(repo="bench"))
        finally:
            BuildJournals.open = real_open  # type: ignore[method-assign]

    got = _measure(
        {
            "journal": lambda: on.run_pipeline(pipeline, ws, BuildRequest(repo="bench")),
            "no journal": without,
            "bare": lambda: [subprocess.run(["true"]) for _ in range(steps)],
        },
        repeat,
    )
    bare_cpu = got["bare"][0]
    for key, (cpu, wall) in got.items():
        print(
            f"{name:<22} {key:<11} cpu {cpu * 1000:7.2f} ms  ({cpu / bare_cpu:5.2f}x bare)"
            f"   wall {wall * 1000:7.2f} ms"
        )
    delta = (got["journal"][0] - got["no journal"][0]) / steps
    print(f"{name:<22} journal costs {delta * 1000:+.3f} ms CPU per step")


def _ops(tmp: Path, repeat: int) -> None:
    """The journal's own work, without the noise of running builds: opening
    and removing one build's journal, and one journaled write to a MemoryStore
    beside the same write sent straight (the bare baseline)."""
    store = MemoryStore()
    build = store.create_build(BuildRequest(repo="bench"))
    journals = BuildJournals(tmp / "ops" / "journal")
    step = StepRun(build_id=build.id, name="s", status=Status.PASSED)
    wrapped = journals.wrap(store)
    rounds = 200 * repeat
    cpu = time.process_time()
    for _ in range(rounds):
        with journals.open(build):
            pass
    per_build = (time.process_time() - cpu) / rounds
    with journals.open(build):
        cpu = time.process_time()
        for _ in range(rounds):
            wrapped.save_step(step)
        journaled = (time.process_time() - cpu) / rounds
    cpu = time.process_time()
    for _ in range(rounds):
        store.save_step(step)
    bare = (time.process_time() - cpu) / rounds
    print(f"journal opened and removed, per build     cpu {per_build * 1e6:7.1f} us")
    print(
        f"one save_step, journaled                  cpu {journaled * 1e6:7.1f} us"
        f"  bare {bare * 1e6:5.1f} us  ({journaled / bare:.1f}x bare, "
        f"+{(journaled - bare) * 1e6:.1f} us)"
    )


def _log_checksum(tmp: Path, repeat: int) -> None:
    """Issue 19, item 2: what hashing a log as it is written costs a LogSink
    (32 MiB in 64 KiB pieces, no store), beside the same sink with the
    hashing made a no-op, in the same run."""
    piece = b"x" * 1023 + b"\n"
    chunk = piece * 64
    real_update = LogChecksum.update

    def write(n: int) -> None:
        path = tmp / "log" / f"{n}.log"
        with LogSink(path, limit=1 << 30) as sink:
            for _ in range(512):
                sink.write(chunk)
        path.unlink()
        checksum_path(path).unlink(missing_ok=True)

    def plain(n: int) -> None:
        LogChecksum.update = lambda _self, _pieces: None  # type: ignore[method-assign]
        try:
            write(n)
        finally:
            LogChecksum.update = real_update  # type: ignore[method-assign]

    counter = iter(range(1 << 30))
    got = _measure(
        {"checksum": lambda: write(next(counter)), "none": lambda: plain(next(counter))},
        max(3, repeat // 3),
    )
    cpu, bare_cpu = got["checksum"][0], got["none"][0]
    print(
        f"32 MiB log through a LogSink, CRC-32     cpu {cpu * 1000:7.1f} ms  without "
        f"{bare_cpu * 1000:7.1f} ms  (+{(cpu - bare_cpu) / 32 * 1000:.2f} ms per MiB, "
        f"{cpu / bare_cpu:.2f}x)"
    )


def _log_verify(tmp: Path, repeat: int) -> None:
    """Issue 19, item 2: what a reader pays the first time it checks a finished
    32 MiB log against its checksum (later checks of the same file are cached)."""
    path = tmp / "verify" / "big.log"
    with LogSink(path, limit=1 << 30) as sink:
        for _ in range(512):
            sink.write((b"y" * 1023 + b"\n") * 64)
    times = []
    for n in range(max(3, repeat // 3)):
        os.utime(checksum_path(path), ns=(n, n))  # a new key: not answered from the cache
        cpu = time.process_time()
        assert log_file_changed(path) is False
        times.append(time.process_time() - cpu)
    cpu = statistics.median(times)
    print(
        f"32 MiB log checked, first read           cpu {cpu * 1000:7.1f} ms  ({cpu / 32 * 1000:.2f} ms per MiB)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sauci-bench-") as tmp_name:
        tmp = Path(tmp_name)
        _ops(tmp, args.repeat)
        _log_checksum(tmp, args.repeat)
        _log_verify(tmp, args.repeat)
        _figure(tmp, "one-step `true`", 1, args.repeat)
        _figure(tmp, "20-step chain `true`", 20, args.repeat)


if __name__ == "__main__":
    main()
