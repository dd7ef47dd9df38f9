"""The UI's start of `sauci serve` in instructions (cachegrind), this tree beside
another: a figure the load of a shared machine does not move, where wall and
CPU times of one tree vary by more than a change of a few tens of ms.

    python benchmarks/bench_serve_instructions.py OTHER_TREE [--runs 2]

For each tree a probe process (``PYTHONHASHSEED=0``, under ``valgrind
--tool=cachegrind --cache-sim=no``, user-space instructions of all threads)
imports what `sauci serve` imports before its UI and opens the store of a
data dir started once already (a restart), then:

- ``noui``: nothing more (the interpreter, SauCI's server imports, the store);
- ``ui``: ``serve_ui``, the UI's start up to its "web UI on";
- ``wsgi``: ``serve_ui``, then waitress is stopped and "/", the login page,
  the stylesheet and the script are sent through the WSGI application in the
  probe's own thread (not through waitress's: its threads' work is not
  waited for at the probe's exit).

The UI's admin login is made on a thread at the first start; each probe
waits for that thread, so a first start whose exit cut the password's hash
short (about 1.3 G instructions) cannot leave the hash to a measured run.

Modes and trees run in turns, ``--runs`` times each; printed: each tree's
median per mode, the difference (this tree minus OTHER_TREE), and ``ui`` and
``wsgi`` less ``noui``. Each run takes about a minute: valgrind runs the
interpreter some 30-50 times slower.
"""

from __future__ import annotations

import argparse
import compileall
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
MODES = ("noui", "ui", "wsgi")

PROBE = """
import sys, threading
from pathlib import Path
from sauci.app.serve import run_server
from sauci.core.config import Settings
from sauci.storage import open_store
settings = Settings(data_dir=Path(sys.argv[1]), sandbox="local")
store = open_store(settings.store_url)
if sys.argv[2] != "noui":
    from sauci.contrib.django.project import serve_ui
    handle = serve_ui(settings, port=0, store=store, quiet=True)
    app = handle._server.application
    handle.stop()
    # The admin login is made on a thread (a new one's password hash is about
    # 1.3 G instructions): the first start waits for it, and every run counts
    # all of what that thread does.
    for thread in threading.enumerate():
        if thread.name == "sauci-admin":
            thread.join()
if sys.argv[2] == "wsgi":
    from wsgiref.util import setup_testing_defaults
    for path in ("/", "/accounts/login/", "/static/sauci/sauci.css", "/static/sauci/sauci.js"):
        environ = {"PATH_INFO": path, "HTTP_HOST": "127.0.0.1", "REMOTE_ADDR": "127.0.0.1"}
        setup_testing_defaults(environ)
        got = []
        body = app(environ, lambda status, headers, exc_info=None: got.append(status))
        b"".join(body)
        getattr(body, "close", lambda: None)()
        assert got[0][:3] in ("200", "302"), (path, got)
"""


def instructions(tree: Path, data: Path, mode: str) -> int:
    env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONHASHSEED": "0"}
    out = subprocess.run(
        [
            "valgrind",
            "--tool=cachegrind",
            "--cache-sim=no",
            "--cachegrind-out-file=/dev/null",
            sys.executable,
            "-c",
            PROBE,
            str(data),
            mode,
        ],
        env=env,
        cwd=tree,  # not this tree's checkout: `-c` puts the working directory first on sys.path
        capture_output=True,
        text=True,
        check=True,
        timeout=900,
    )
    for line in out.stderr.splitlines():
        if "I   refs:" in line or "I refs:" in line:
            return int(line.split(":")[1].replace(",", ""))
    raise RuntimeError(f"no instruction count from cachegrind:\n{out.stderr}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("other", type=Path, help="the tree to compare with (e.g. /work/main)")
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed (apt-get install valgrind)")
    trees = (HERE, args.other.resolve())
    for tree in trees:  # PYTHONDONTWRITEBYTECODE=1: else edited modules compile on every run
        compileall.compile_dir(str(tree / "sauci"), quiet=1)
    counts: dict[tuple[Path, str], list[int]] = {(t, m): [] for t in trees for m in MODES}
    with tempfile.TemporaryDirectory(prefix="sauci-bench-serve-instr-") as name:
        datas = {tree: Path(name) / f"data-{n}" for n, tree in enumerate(trees)}
        for tree in trees:  # the first start makes the databases; then restarts
            datas[tree].mkdir(mode=0o700)
            subprocess.run(
                [sys.executable, "-c", PROBE, str(datas[tree]), "ui"],
                env={**os.environ, "PYTHONPATH": str(tree)},
                cwd=tree,
                check=True,
                timeout=300,
            )
        for n in range(args.runs):
            for mode in MODES:
                for tree in trees if n % 2 == 0 else trees[::-1]:
                    got = instructions(tree, datas[tree], mode)
                    counts[tree, mode].append(got)
                    print(f"run {n + 1} {mode:<5} {tree}: {got / 1e6:,.1f} M", flush=True)
    med = {key: statistics.median(values) / 1e6 for key, values in counts.items()}
    print(f"{'instructions (median, M)':<28}{'this tree':>12}{'other':>12}{'diff':>10}")
    for mode in MODES:
        mine, theirs = med[trees[0], mode], med[trees[1], mode]
        print(f"{mode:<28}{mine:>12,.1f}{theirs:>12,.1f}{mine - theirs:>+10,.1f}")
    for mode in ("ui", "wsgi"):
        mine = med[trees[0], mode] - med[trees[0], "noui"]
        theirs = med[trees[1], mode] - med[trees[1], "noui"]
        label = f"{mode} less noui"
        print(f"{label:<28}{mine:>12,.1f}{theirs:>12,.1f}{mine - theirs:>+10,.1f}")
    print(f"this tree {trees[0]}, other {trees[1]}, {args.runs} runs of each")


if __name__ == "__main__":
    main()
