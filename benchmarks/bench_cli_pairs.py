"""`sauci run` of a one-step pipeline in two trees, in pairs, and the median of
the pairs' differences: a change of a few milliseconds is lost between two
medians on a busy machine, less so within pairs run back to back.

    python benchmarks/bench_cli_pairs.py OTHER_TREE [--pairs N]

Runs `python -m sauci run --quiet` with this tree and OTHER_TREE on
PYTHONPATH in turns (the order alternating from pair to pair) and prints each
tree's wall and CPU (user+sys of the process and the git processes it waits
for) medians and the median difference, this tree minus the other.
"""

from __future__ import annotations

import argparse
import compileall
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GIT = ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.com"]
HERE = Path(__file__).resolve().parents[1]


def one(tree: Path, repo: Path, data: Path) -> tuple[float, float]:
    """Wall and CPU milliseconds of one run."""
    env = {**os.environ, "PYTHONPATH": str(tree), "SAUCI_DATA_DIR": str(data)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "sauci", "run", "--quiet"],
        cwd=repo,
        env=env,
        stdout=subprocess.DEVNULL,
        check=True,
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return wall * 1000, cpu * 1000


def one_step_repo(repo: Path) -> Path:
    """A git repository at ``repo`` of one commit: a one-step ``true`` pipeline."""
    repo.mkdir()
    (repo / ".sauci.yml").write_text("steps:\n  t:\n    run: 'true'\n")
    subprocess.run([*GIT, "init", "-q", "-b", "main"], cwd=repo, check=True)
    subprocess.run([*GIT, "add", "."], cwd=repo, check=True)
    subprocess.run([*GIT, "commit", "-q", "-m", "x"], cwd=repo, check=True)
    return repo


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("other", type=Path, help="the tree to compare with (e.g. /work/main)")
    parser.add_argument("--pairs", type=int, default=40)
    args = parser.parse_args()
    trees = (HERE, args.other.resolve())
    for tree in trees:  # PYTHONDONTWRITEBYTECODE=1: else edited modules compile on every run
        compileall.compile_dir(str(tree / "sauci"), quiet=1)
    with tempfile.TemporaryDirectory() as tmp:
        repo = one_step_repo(Path(tmp) / "repo")
        data = Path(tmp) / "data"
        for tree in trees:
            one(tree, repo, data)  # warm-up: the store's creation, the disk cache
        times: dict[Path, list[tuple[float, float]]] = {tree: [] for tree in trees}
        for i in range(args.pairs):
            for tree in trees if i % 2 == 0 else trees[::-1]:
                times[tree].append(one(tree, repo, data))
    for tree in trees:
        wall = [w for w, _ in times[tree]]
        cpu = [c for _, c in times[tree]]
        print(
            f"{tree}: wall median {statistics.median(wall):.1f} ms (best {min(wall):.1f}), "
            f"CPU median {statistics.median(cpu):.1f} ms (best {min(cpu):.1f})"
        )
    mine, other = (times[tree] for tree in trees)
    wall_diff = statistics.median(a[0] - b[0] for a, b in zip(mine, other, strict=True))
    cpu_diff = statistics.median(a[1] - b[1] for a, b in zip(mine, other, strict=True))
    print(
        f"this tree minus the other, median of {args.pairs} pairs: wall {wall_diff:+.1f} ms, "
        f"CPU {cpu_diff:+.1f} ms; load {os.getloadavg()[0]:.1f}"
    )


if __name__ == "__main__":
    main()
