"""What saving a ``skip_on_hit`` venv cache costs the step that made it: the
usual save (pack the archive, then unpack it as the entry's kept copy)
against the linked save (the kept copy as hard links to the step's files,
the archive written after the step), in turns, on the same venv.

    python benchmarks/bench_cache_save.py [--repeat 5] [--packages pytest]
                                          [--python /usr/bin/python3]

The venv is made once (``python -m venv`` and ``pip install``), then saved
``--repeat`` times each way, alternately, into fresh cache stores. Printed
per way: the median wall time until the step may end, and the CPU time
(this process and its children) it took; for the linked save also the
archive written after the step. The ratio is to the usual save, the bare
baseline this work replaces. Run as root, as ``sauci serve`` runs the
namespace sandbox (the linked save gives the files to SauCI).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sauci.core import cache_saver
from sauci.core.cache_archive import pack
from sauci.core.cache_store import CacheStore
from sauci.core.cache_tree import make_tree


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _venv(root: Path, python: str, packages: str) -> Path:
    ws = root / "ws"
    ws.mkdir()
    subprocess.run([python, "-m", "venv", str(ws / ".venv")], check=True)
    pip = [str(ws / ".venv/bin/python"), "-m", "pip", "install", "-q"]
    subprocess.run([*pip, "--disable-pip-version-check", *packages.split()], check=True)
    return ws


def _usual(store: CacheStore, ws: Path) -> tuple[float, float]:
    cpu, t0 = _cpu(), time.monotonic()
    staged = store.staging("demo")
    pack(staged, {"ws": ws}, {"ws": [".venv"]})
    entry = store.commit("demo", "main", "k", staged)
    assert entry is not None and make_tree(entry.path) is not None
    return time.monotonic() - t0, _cpu() - cpu


def _linked(store: CacheStore, ws: Path, n: int) -> tuple[float, float, float]:
    cpu, t0 = _cpu(), time.monotonic()
    size = cache_saver.save_linked(
        store, "demo", "main", "k", n, {"ws": ws}, {"ws": [".venv"]}, os.geteuid()
    )
    assert size is not None
    step = time.monotonic() - t0
    cache_saver.wait_for_build(n)
    return step, _cpu() - cpu, time.monotonic() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--packages", default="pytest")
    parser.add_argument("--python", default="/usr/bin/python3")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="sauci-bench-save-"))
    usual: list[tuple[float, float]] = []
    linked: list[tuple[float, float, float]] = []
    try:
        ws = _venv(root, args.python, args.packages)
        found = [p for p in (ws / ".venv").rglob("*") if p.is_file() and not p.is_symlink()]
        size, files = sum(p.stat().st_size for p in found), len(found)
        for n in range(args.repeat):
            # The linked save makes the venv's files read-only: a fresh copy each round.
            for way in ("usual", "linked"):
                copy = root / f"ws-{way}-{n}"
                subprocess.run(["cp", "-a", str(ws), str(copy)], check=True)
                store = CacheStore(root / f"cache-{way}-{n}")
                if way == "usual":
                    usual.append(_usual(store, copy))
                else:
                    linked.append(_linked(store, copy, n))
                shutil.rmtree(copy, ignore_errors=True)
                shutil.rmtree(store.root, ignore_errors=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    load = os.getloadavg()[0]
    u_wall = statistics.median(w for w, _ in usual)
    u_cpu = statistics.median(c for _, c in usual)
    l_wall = statistics.median(w for w, _, _ in linked)
    l_cpu = statistics.median(c for _, c, _ in linked)
    l_all = statistics.median(a for _, _, a in linked)
    print(
        f"venv of {args.packages!r} ({size / 1024**2:.1f} MiB, {files} files); "
        f"median of {args.repeat}, in turns; load {load:.1f}"
    )
    print(f"usual save (pack, then unpack the kept copy): {u_wall:.3f} s wall, {u_cpu:.3f} s CPU")
    print(
        f"linked save, until the step may end: {l_wall:.3f} s wall = {l_wall / u_wall:.2f}x the "
        f"usual; {l_cpu:.3f} s CPU all told = {l_cpu / u_cpu:.2f}x; archive done after "
        f"{l_all:.3f} s"
    )


if __name__ == "__main__":
    sys.exit(main())
