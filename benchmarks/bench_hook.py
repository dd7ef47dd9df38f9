"""What SauCI's post-receive hook adds to a push.

    python benchmarks/bench_hook.py [--repeat N] [--chained]

Pushes one new commit to a local bare repository, ``--repeat`` times without
a hook and ``--repeat`` times with SauCI's hook (interleaved, so that disk
and load changes hit both alike), and prints both medians and the
difference. With ``--chained`` the repository already has a (trivial)
post-receive hook, so the baseline runs it and SauCI's hook chains it.
Target (DESIGN.md, "A hook must be cheap"): at most 50 ms.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sauci.triggers import install_hook, read_requests, remove_hook

TARGET_MS = 50.0


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


def setup(root: Path) -> tuple[Path, Path]:
    bare = root / "remote.git"
    git(root, "init", "-q", "--bare", "-b", "main", str(bare))
    clone = root / "clone"
    git(root, "clone", "-q", str(bare), str(clone))
    git(clone, "checkout", "-q", "-b", "main")
    git(clone, "commit", "-q", "--allow-empty", "-m", "start")
    git(clone, "push", "-q", "origin", "main")
    return bare, clone


def timed_push(clone: Path, n: int) -> float:
    git(clone, "commit", "-q", "--allow-empty", "-m", f"commit {n}")
    start = time.perf_counter()
    git(clone, "push", "-q", "origin", "main")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--chained", action="store_true", help="chain an existing hook")
    args = parser.parse_args()
    os.environ.setdefault("GIT_AUTHOR_NAME", "bench")
    os.environ.setdefault("GIT_AUTHOR_EMAIL", "bench@example.com")
    os.environ.setdefault("GIT_COMMITTER_NAME", "bench")
    os.environ.setdefault("GIT_COMMITTER_EMAIL", "bench@example.com")
    with tempfile.TemporaryDirectory(prefix="sauci-bench-hook-") as tmp:
        root = Path(tmp)
        bare, clone = setup(root)
        if args.chained:
            existing = bare / "hooks" / "post-receive"
            existing.write_text("#!/bin/sh\ncat >/dev/null\n")
            existing.chmod(0o755)
        spool = root / "spool"
        without: list[float] = []
        with_hook: list[float] = []
        timed_push(clone, -1)  # warm-up
        for n in range(args.repeat):
            remove_hook(bare)
            without.append(timed_push(clone, 2 * n))
            install_hook(bare, spool)
            with_hook.append(timed_push(clone, 2 * n + 1))
        spooled = len(read_requests(spool))
    bare_ms = statistics.median(without) * 1000
    hook_ms = statistics.median(with_hook) * 1000
    diff = hook_ms - bare_ms
    verdict = "ok" if diff <= TARGET_MS else "OVER TARGET"
    print(f"push without hook: {bare_ms:7.1f} ms (median of {args.repeat})")
    print(f"push with hook:    {hook_ms:7.1f} ms (median of {args.repeat})")
    print(f"hook overhead:     {diff:7.1f} ms (target <= {TARGET_MS:.0f} ms: {verdict})")
    print(f"spooled requests:  {spooled} (expected {args.repeat})")


if __name__ == "__main__":
    main()
