"""Instructions a one-step `sauci run` executes, counted by valgrind (cachegrind,
no cache simulation): the same on a busy machine as on a quiet one, where wall
and CPU times of a few milliseconds drown in the load.

    python benchmarks/bench_cli_instructions.py [OTHER_TREE ...]
    python benchmarks/bench_cli_instructions.py --budget


Counts the Python process only (git and the step are not traced), with
PYTHONHASHSEED=0, for `python -c pass`, an import of the libraries the run's
path uses (attrs, PyYAML and the stdlib modules it adds), `import sauci,
sauci.cli, yaml` and `python -m sauci run --quiet`, with this tree and each
OTHER_TREE on PYTHONPATH. About a minute per tree; needs valgrind.

``--budget`` splits this tree's run instead (callgrind, half a minute): the
instructions spent inside a few of the interpreter's C functions, each
inclusive of what it calls: ``compile()`` of source text at run time (attrs'
generated ``__init__``/``__eq__``/``__hash__``/``__repr__``, one script per
class), unmarshalling ``.pyc`` files, the cyclic collector (during the
imports and at the exit) and the interpreter's exit (module teardown).
"""

from __future__ import annotations

import argparse
import compileall
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from bench_cli_pairs import one_step_repo

VALGRIND = ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null"]
HERE = Path(__file__).resolve().parents[1]
# What the run's path imports that is not SauCI's (from `python -X importtime`).
LIBRARIES = (
    "attrs, yaml, argparse, base64, concurrent.futures, contextlib, datetime, enum, fcntl, "
    "fnmatch, heapq, json, logging, pathlib, queue, selectors, shutil, signal, "
    "sqlite3, subprocess, tempfile, threading, typing, uuid"
)


def instructions(args: list[str], tree: Path, cwd: Path, data: Path) -> int:
    env = {**os.environ, "PYTHONPATH": str(tree), "SAUCI_DATA_DIR": str(data)}
    env["PYTHONHASHSEED"] = "0"
    out = subprocess.run(
        [*VALGRIND, sys.executable, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stderr
    found = re.search(r"I\s+refs:\s+([\d,]+)", out)
    if found is None:
        raise SystemExit(f"no instruction count in valgrind's output:\n{out}")
    return int(found.group(1).replace(",", ""))


# C functions of CPython 3.11 whose inclusive count --budget prints.
BUDGET = {
    "builtin_compile": "compile() of source text (attrs' generated methods)",
    "marshal_loads": "unmarshalling .pyc files (the modules' code)",
    "gc_collect_main": "the cyclic garbage collector (imports and exit)",
    "Py_FinalizeEx": "the interpreter's exit (module teardown, its collections too)",
}


def budget(tree: Path, cwd: Path, data: Path) -> None:
    """Where the instructions of one `sauci run` go, by C function (inclusive)."""
    env = {**os.environ, "PYTHONPATH": str(tree), "SAUCI_DATA_DIR": str(data)}
    env["PYTHONHASHSEED"] = "0"
    with tempfile.TemporaryDirectory() as out:
        profile = Path(out) / "callgrind.out"
        tool = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={profile}"]
        subprocess.run(
            [*tool, sys.executable, "-m", "sauci", "run", "--quiet"],
            cwd=cwd,
            env=env,
            capture_output=True,
            check=True,
        )
        text = subprocess.run(
            ["callgrind_annotate", "--inclusive=yes", "--threshold=100", str(profile)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    found = re.search(r"([\d,]+)\s+\(100\.0%\)\s+PROGRAM TOTALS", text)
    if found is None:
        raise SystemExit("no total in callgrind_annotate's output")
    total = int(found.group(1).replace(",", ""))
    print(f"sauci run, one step: {total / 1e6:.1f} M instructions")
    for function, what in BUDGET.items():
        # The first line naming the function (not a recursive '2 entry) is its inclusive count.
        line = re.search(rf"^\s*([\d,]+) .*[:/]{function}(?: |$)", text, re.MULTILINE)
        count = int(line.group(1).replace(",", "")) if line else 0
        print(f"  {count / 1e6:7.1f} M ({count / total:5.1%})  {what}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("others", nargs="*", type=Path, help="trees to count too")
    parser.add_argument(
        "--budget", action="store_true", help="split this tree's run by C function (callgrind)"
    )
    args = parser.parse_args()
    if args.budget:
        compileall.compile_dir(str(HERE / "sauci"), quiet=1)
        with tempfile.TemporaryDirectory() as tmp:
            repo = one_step_repo(Path(tmp) / "repo")
            data = Path(tmp) / "data"
            instructions(["-m", "sauci", "run", "--quiet"], HERE, repo, data)  # the store
            budget(HERE, repo, data)
        return
    trees = [HERE, *(t.resolve() for t in args.others)]
    for tree in trees:  # PYTHONDONTWRITEBYTECODE=1: else edited modules compile on every run
        compileall.compile_dir(str(tree / "sauci"), quiet=1)
    with tempfile.TemporaryDirectory() as tmp:
        repo = one_step_repo(Path(tmp) / "repo")
        data = Path(tmp) / "data"
        cases = {
            "python -c pass": ["-c", "pass"],
            "the libraries only": ["-c", f"import {LIBRARIES}"],
            "import sauci, sauci.cli, yaml": ["-c", "import sauci, sauci.cli, yaml"],
            "sauci run, one step": ["-m", "sauci", "run", "--quiet"],
        }
        for tree in trees:
            instructions(cases["sauci run, one step"], tree, repo, data)  # the store's creation
            bare = None
            for name, case in cases.items():
                count = instructions(case, tree, repo, data)
                bare = bare or count
                print(f"{tree}: {name:<30} {count / 1e6:8.1f} M instructions ({count / bare:.2f}x)")


if __name__ == "__main__":
    main()
