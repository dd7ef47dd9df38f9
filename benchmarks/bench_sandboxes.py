"""Per-step overhead of each sandbox above a bare `true`, measured in the same run.

    python benchmarks/bench_sandboxes.py [--repeat N] [--docker-url unix:///.../docker.sock
                                          --docker-image IMAGE]

The bare baseline is ``subprocess.run(["true"])``. Each sandbox runs a step
whose command is ``true`` (argv ``["true"]``, no shell, so the figure is the
sandbox's own cost). Docker is measured only when given a daemon and an image
(never the machine's default socket); run it as root, which bwrap's setpriv
drop and cgroups need.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from sauci.core.models import Step
from sauci.testing.sandbox import MemoryLog
from sauci.typing import Sandbox


def median_time(fn: Callable[[], object], repeat: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def step_runner(sandbox: Sandbox, workspace: Path, shell: tuple[str, ...]) -> Callable[[], None]:
    step = Step(name="bench", run="true", shell=shell)
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin"}

    def once() -> None:
        result = sandbox.run(
            step, workspace, MemoryLog(), env=env, cancel=threading.Event(), label="bench"
        )
        assert result.exit_code == 0, result

    return once


def report(name: str, value: float, base: float, target_ms: float) -> None:
    over = (value - base) * 1000
    verdict = "ok" if over <= target_ms else "OVER TARGET"
    print(
        f"{name:<34} {value * 1000:8.1f} ms   bare {base * 1000:6.1f} ms   "
        f"overhead {over:+7.1f} ms   target <= {target_ms:g} ms  {verdict}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--docker-url")
    parser.add_argument("--docker-image")
    args = parser.parse_args()

    area = Path(tempfile.mkdtemp(prefix="sauci-bench-", dir="/tmp"))
    area.chmod(0o711)
    workspace = area / "ws"
    workspace.mkdir()
    try:
        bare = median_time(lambda: subprocess.run(["true"], check=True), args.repeat)
        print(f"{'bare subprocess.run([true])':<34} {bare * 1000:8.1f} ms")

        from sauci.sandbox.local import LocalSandbox

        local = LocalSandbox(use_cgroups=None, cgroup_prefix="sauci-bench-")
        how = "cgroups" if local.layout is not None else "NO cgroups"
        t = median_time(step_runner(local, workspace, ("true",)), args.repeat)
        report(f"LocalSandbox ({how})", t, bare, 5)

        if shutil.which("bwrap"):
            from sauci.sandbox.namespace import NamespaceSandbox

            ns = NamespaceSandbox(cgroup_prefix="sauci-bench-")
            t = median_time(step_runner(ns, workspace, ("true",)), args.repeat)
            report("NamespaceSandbox (bwrap)", t, bare, 30)
        else:
            print("NamespaceSandbox: skipped, bwrap is not installed")

        if args.docker_url and args.docker_image:
            from sauci.sandbox.docker import DockerSandbox

            docker = DockerSandbox(
                base_url=args.docker_url, image=args.docker_image, owner="sauci-bench"
            )
            repeat = max(5, args.repeat // 5)
            t = median_time(step_runner(docker, workspace, ("true",)), repeat)
            report("DockerSandbox", t, bare, 600)
            docker.close()
        else:
            print("DockerSandbox: skipped (give --docker-url and --docker-image)")
    finally:
        shutil.rmtree(area, ignore_errors=True)


if __name__ == "__main__":
    main()
