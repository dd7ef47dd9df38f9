"""What step caches save an install step: a venv and `pip install` of a small
real package set from PyPI, built by SauCI cold (empty caches), warm (the
`cache:` key hits: the venv is restored) and with the pip download cache
alone (no `cache:` key), beside the same commands run bare in the same run.

    python benchmarks/bench_cache.py [--repeat N] [--sandbox local|namespace]
        [--packages "six itsdangerous"] [--python /usr/bin/python3]

Each figure is the median of N runs, each in a fresh workspace (and, for
cold and bare, fresh caches); printed with its ratio to bare `pip install`.
Needs the package index (PyPI) to be reachable.
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

from sauci import Settings, run_pipeline
from sauci.core.pipeline import parse_pipeline

PYTHON = sys.executable  # the namespace sandbox hides /root, /home: --python /usr/bin/python3


def _pipeline(packages: str, *, cached: bool, network: bool) -> str:
    text = f"""\
steps:
  install:
    run: |
      [ -d .venv ] || {PYTHON} -m venv .venv
      .venv/bin/python -m pip install -q --disable-pip-version-check {packages}
      .venv/bin/python -m pip list --disable-pip-version-check | tail -n +3 | wc -l
    timeout: 10m
"""
    if network:
        text += "    network: true\n"
    if cached:
        text += """\
    cache:
      paths: [.venv]
      key: "venv-${{ hashFiles('requirements.txt') }}"
"""
    return text


class Area:
    """Fresh directories the namespace sandbox's uid can reach (0711)."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="sauci-bench-cache-", dir="/tmp"))
        self.root.chmod(0o711)
        self.n = 0

    def fresh(self, name: str) -> Path:
        self.n += 1
        path = self.root / f"{name}{self.n}"
        path.mkdir()
        path.chmod(0o711)
        return path

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def _sandbox(name: str):  # type: ignore[no-untyped-def]
    if name == "namespace":
        from sauci.sandbox.namespace import NamespaceSandbox

        return NamespaceSandbox()
    return None  # run_pipeline's LocalSandbox


def _build(area: Area, data: Path, packages: str, *, cached: bool, sandbox: str) -> float:
    ws = area.fresh("ws")
    (ws / "requirements.txt").write_text("\n".join(packages.split()) + "\n")
    pipeline = parse_pipeline(_pipeline(packages, cached=cached, network=sandbox != "local"))
    started = time.perf_counter()
    outcome = run_pipeline(
        pipeline,
        ws,
        sandbox=_sandbox(sandbox),
        settings=Settings(data_dir=data),
        repo="bench",
        ref="refs/heads/main",
    )
    seconds = time.perf_counter() - started
    step = outcome.steps[0]
    if not outcome.ok:
        log = Path(step.log_path or "").read_text(errors="replace")
        raise SystemExit(f"the build failed: {step.reason}\n{log[-2000:]}")
    return seconds


def _bare(area: Area, packages: str) -> float:
    """The same commands with no SauCI and an empty pip cache."""
    ws = area.fresh("bare")
    env = {**os.environ, "PIP_CACHE_DIR": str(area.fresh("pipcache"))}
    started = time.perf_counter()
    subprocess.run([PYTHON, "-m", "venv", ".venv"], cwd=ws, check=True, env=env)
    pip = [".venv/bin/python", "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, *packages.split()], cwd=ws, check=True, env=env)
    return time.perf_counter() - started


def main() -> None:
    global PYTHON
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sandbox", choices=["local", "namespace"], default="local")
    parser.add_argument("--packages", default="six itsdangerous")
    parser.add_argument("--python", default=PYTHON, help="the Python that makes the venvs")
    args = parser.parse_args()
    PYTHON = args.python
    area = Area()
    figures: dict[str, list[float]] = {"bare": [], "cold": [], "warm": [], "downloads": []}
    try:
        for _ in range(args.repeat):
            figures["bare"].append(_bare(area, args.packages))
            data = area.fresh("data")  # empty caches
            figures["cold"].append(
                _build(area, data, args.packages, cached=True, sandbox=args.sandbox)
            )
            figures["warm"].append(
                _build(area, data, args.packages, cached=True, sandbox=args.sandbox)
            )
            # No cache: key, but the pip download cache the cold build filled.
            figures["downloads"].append(
                _build(area, data, args.packages, cached=False, sandbox=args.sandbox)
            )
    finally:
        area.close()
    bare = statistics.median(figures["bare"])
    print(f"packages: {args.packages}; sandbox: {args.sandbox}; median of {args.repeat}")
    labels = {
        "bare": "bare venv + pip install (empty pip cache)",
        "cold": "sauci build, cold (cache miss, saves)",
        "warm": "sauci build, warm (cache hit)",
        "downloads": "sauci build, pip download cache only",
    }
    for name, label in labels.items():
        median = statistics.median(figures[name])
        print(f"{label:45s} {median:7.2f} s  {median / bare:5.2f}x bare")


if __name__ == "__main__":
    main()
