"""Per-step overhead of each sandbox above a bare `true`, measured in the same run.

    python benchmarks/bench_sandboxes.py [--repeat N] [--docker-url unix:///.../docker.sock
                                          --docker-image IMAGE]

The bare baseline is ``subprocess.run(["true"])``; for docker also a bare
``docker exec`` and ``docker run`` of ``true`` through the SDK. Each sandbox runs a step
whose command is ``true`` (argv ``["true"]``, no shell, so the figure is the
sandbox's own cost). DockerSandbox is measured for a step in a build's kept
container, run by the container's step agent and (``step_agent=False``) with
a ``docker exec`` of its own, and for a build's first step (the container
made and removed with it). Docker is measured only when given a daemon and an image
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
from typing import Any

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


def interleaved(*fns: Callable[[], object], repeat: int) -> list[float]:
    """The median times of ``fns``, run in turn."""
    for fn in fns:
        fn()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeat):
        for fn, into in zip(fns, times, strict=True):
            start = time.perf_counter()
            fn()
            into.append(time.perf_counter() - start)
    return [statistics.median(t) for t in times]


def report(name: str, value: float, base: float, target_ms: float) -> None:
    over = (value - base) * 1000
    verdict = "ok" if over <= target_ms else "OVER TARGET"
    print(
        f"{name:<34} {value * 1000:8.1f} ms   bare {base * 1000:6.1f} ms   "
        f"overhead {over:+7.1f} ms   target <= {target_ms:g} ms  {verdict}"
    )


def bench_docker(url: str, image: str, workspace: Path, repeat: int, bare: float) -> None:
    """DockerSandbox's step beside a bare ``docker exec`` and ``docker run`` of
    ``true`` through the same SDK, in this run."""
    import docker as sdk

    from sauci.sandbox.docker import DockerSandbox

    api = sdk.APIClient(base_url=url, version="auto")
    keeper = api.create_container(
        image, ["sleep", "100000"], host_config=api.create_host_config(init=True)
    )["Id"]
    api.start(keeper)

    def bare_exec() -> None:
        made = api.exec_create(keeper, ["true"], user="1000:1000")
        api.exec_start(made["Id"])
        assert api.exec_inspect(made["Id"])["ExitCode"] == 0

    def bare_run() -> None:
        made = api.create_container(
            image, ["true"], host_config=api.create_host_config(init=True, network_mode="none")
        )["Id"]
        api.start(made)
        assert api.wait(made)["StatusCode"] == 0
        api.remove_container(made, force=True)

    sandbox = DockerSandbox(base_url=url, image=image, owner="sauci-bench")
    by_exec = DockerSandbox(base_url=url, image=image, owner="sauci-bench", step_agent=False)
    first = step_runner(sandbox, workspace, ("true",))

    def first_step() -> None:  # a build of one step: its container made and removed
        first()
        sandbox.build_ended(workspace)

    try:
        # Interleaved, so that a load that comes and goes weighs on both alike.
        exec_t, step_t, old_t, true_t = interleaved(
            bare_exec,
            step_runner(sandbox, workspace, ("true",)),
            step_runner(by_exec, workspace, ("true",)),
            lambda: subprocess.run(["true"], check=True),
            repeat=repeat,
        )
        cpu = agent_cpu(sandbox, step_runner(sandbox, workspace, ("true",)), repeat)
        run_t, first_t = interleaved(bare_run, first_step, repeat=max(5, repeat // 5))
    finally:
        sandbox.close()
        by_exec.close()
        api.remove_container(keeper, force=True)
    print(f"{'bare docker exec (SDK)':<34} {exec_t * 1000:8.1f} ms")
    print(f"{'bare docker run (SDK)':<34} {run_t * 1000:8.1f} ms")
    agent = "by its agent" if sandbox.pool.agent else "NO agent: by docker exec"
    report(f"DockerSandbox, a step ({agent})", step_t, bare, 60)
    report("DockerSandbox, a step (docker exec)", old_t, bare, 60)
    print(
        f"{'':<34} {'':8}    vs docker exec {(step_t - exec_t) * 1000:+7.1f} ms "
        f"(x{step_t / exec_t:.2f}), vs docker run {(step_t - run_t) * 1000:+7.1f} ms "
        f"(x{step_t / run_t:.2f})"
    )
    report("DockerSandbox, a build's 1st step", first_t, bare, 600)
    if cpu is not None:
        print(
            f"{'':<34} CPU per step by its agent: SauCI {cpu[0] * 1000:.2f} ms + "
            f"in the container {cpu[1] * 1000:.2f} ms (no Docker API call: none in dockerd)"
        )
    over = (step_t - true_t) * 1000
    print(
        f"GOAL DockerSandbox per-step overhead {over:+.1f} ms ({step_t * 1000:.1f} ms, "
        f"bare true {true_t * 1000:.1f} ms, bare docker exec {exec_t * 1000:.1f} ms, "
        f"step by docker exec {old_t * 1000:.1f} ms)  goal <= 60 ms  "
        + ("ok" if over <= 60 else "OVER GOAL")
    )


def agent_cpu(sandbox: Any, once: Callable[[], None], repeat: int) -> tuple[float, float] | None:
    """CPU time per step run by the agent: this process's, and the kept
    container's (its cpuacct cgroup, cgroup v1 with the cgroupfs driver):
    what a step costs whatever the load (its wall time is this plus waits
    for the CPU)."""
    once()
    held = list(sandbox.pool._all.values())
    usage = Path("/sys/fs/cgroup/cpuacct/docker") / (held[0].id if held else "-") / "cpuacct.usage"
    if len(held) != 1 or not usage.exists():
        return None
    before_ns, before = int(usage.read_text()), time.process_time()
    for _ in range(repeat):
        once()
    used = time.process_time() - before
    container = (int(usage.read_text()) - before_ns) / 1e9
    return used / repeat, container / repeat


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
            bench_docker(args.docker_url, args.docker_image, workspace, args.repeat, bare)
        else:
            print("DockerSandbox: skipped (give --docker-url and --docker-image)")
    finally:
        shutil.rmtree(area, ignore_errors=True)


if __name__ == "__main__":
    main()
