"""The compute options side by side: a VM guest's boot and per-step cost, beside
the namespace and Docker sandboxes and a bare ``sh -c true``, in one run.

    python benchmarks/compute.py [--repeat N] [--boots N] [--vm-allow-emulation]
    python benchmarks/compute.py --mixed-load [--runs N] [--real]   (benchmarks/mixed_load.py,
                                                                  mixed_load_real.py)
    python benchmarks/compute.py --scale-to-zero [--runs N]   (benchmarks/scale_to_zero.py)
                                 [--docker-url unix:///.../docker.sock --docker-image IMAGE]

Every figure is a median. The bare baseline is ``subprocess.run(["sh", "-c",
"true"])``; each sandbox runs the step ``sh -c true``. The VM's boot is timed
from ``run()`` of a build's first step (``echo first``) to that step's first
output byte, a fresh guest each time; its per-step cost is that of ``sh -c
true`` in a guest already booted. The output says whether the guest ran
under KVM or emulation (TCG), and why not KVM. Run it as root (bwrap's
setpriv drop, cgroups, /boot/vmlinuz-* are root's).

With ``--mixed-load [--runs N]`` it runs the mixed load of "Compute the seed
asks for" item 2 instead (benchmarks/mixed_load.py says how).
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

ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin"}
# The goals (docs/performance.md): under emulation boot <= 3 s and a
# step <= 50 ms; with working KVM boot <= 300 ms.
GOAL_BOOT_TCG, GOAL_BOOT_KVM, GOAL_STEP_VM = 3.0, 0.3, 0.05


def median_time(fn: Callable[[], object], repeat: int, *, warm: bool = True) -> float:
    if warm:
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def step_once(sandbox: Sandbox, workspace: Path, script: str = "true") -> Callable[[], None]:
    step = Step(name="bench", run=script, shell=("sh", "-c"))

    def once() -> None:
        result = sandbox.run(
            step, workspace, MemoryLog(), env=ENV, cancel=threading.Event(), label="bench"
        )
        assert result.exit_code == 0, result

    return once


class FirstOutput(MemoryLog):
    """A log that notes when its first byte came."""

    def __init__(self) -> None:
        super().__init__()
        self.first: float | None = None

    def write(self, data: bytes) -> None:
        if self.first is None and data:
            self.first = time.perf_counter()
        super().write(data)


def line(name: str, value: float, bare: float, goal: float | None = None) -> None:
    ratio = value / bare if bare else float("inf")
    verdict = ""
    if goal is not None:
        verdict = f"   goal <= {goal * 1000:g} ms {'ok' if value <= goal else 'OVER GOAL'}"
    print(f"{name:<44} {value * 1000:10.1f} ms   {ratio:8.1f}x bare{verdict}")


def vm_figures(area: Path, bare: float, args: argparse.Namespace) -> None:
    from vm_costs import qemu_cpu_seconds, qemu_memory

    from sauci.exceptions import SandboxError
    from sauci.sandbox.vm import VmSandbox

    try:
        vm = VmSandbox(data_dir=area / "data", allow_emulation=args.vm_allow_emulation)
    except SandboxError as exc:
        print(f"VmSandbox: skipped: {exc}")
        return
    accel = vm.acceleration
    print(
        f"VmSandbox runs under {accel.accel.upper()}"
        + (f" (KVM not usable: {accel.kvm_problem})" if accel.emulated else "")
    )
    try:
        boots, cpus = [], []
        for n in range(args.boots):
            workspace = area / f"vm-build-{n}"
            workspace.mkdir()
            log = FirstOutput()
            started = time.perf_counter()
            result = vm.run(
                Step(name="first", run="echo first", shell=("sh", "-c")),
                workspace,
                log,
                env=ENV,
                cancel=threading.Event(),
                label=f"bench-boot-{n}",
            )
            assert result.exit_code == 0 and log.first is not None, result
            boots.append(log.first - started)
            cpus.append(qemu_cpu_seconds(_qemu_pid(vm)))  # to the first step's end
            if n < args.boots - 1:
                vm.build_ended(workspace)
        print(f"{'vm boots (s)':<44} {', '.join(f'{b:.2f}' for b in boots)}")
        print(
            f"{'vm boots, QEMU CPU to the first step (s)':<44} {', '.join(f'{c:.2f}' for c in cpus)}"
        )
        goal = GOAL_BOOT_TCG if accel.emulated else GOAL_BOOT_KVM
        line(
            f"vm boot to first output ({accel.accel}, n={args.boots})",
            statistics.median(boots),
            bare,
            goal,
        )
        # The last build's guest is still up: its steps cost no boot.
        pid = _qemu_pid(vm)
        cpu = qemu_cpu_seconds(pid)
        step = median_time(step_once(vm, workspace), args.repeat)
        cpu = (qemu_cpu_seconds(pid) - cpu) / (args.repeat + 1)  # median_time warms once
        line(f"vm step in a booted guest ({accel.accel})", step, bare, GOAL_STEP_VM)
        print(f"{'vm step, QEMU CPU (mean)':<44} {cpu * 1000:10.1f} ms")
        python = median_time(step_once(vm, workspace, "python3 -c pass"), max(3, args.repeat // 5))
        line(f"vm step python3 -c pass ({accel.accel})", python, bare)
        _memory_figures(vm, workspace, qemu_memory(pid, vm.memory_mib))
    finally:
        vm.close()


def _memory_figures(vm: Any, workspace: Path, memory: Any) -> None:
    from vm_costs import qemu_rss_mib

    rss = qemu_rss_mib(_qemu_pid(vm))
    free = _guest_free_mib(vm, workspace)
    if rss is not None and free is not None:
        # The old upper bound: QEMU's resident set less the guest RAM the guest
        # uses (huge pages and page cache make it an over-estimate).
        print(
            f"{'vm QEMU resident memory after these steps':<44} {rss:10.1f} MiB "
            f"(guest RAM {vm.memory_mib} MiB, {free:.1f} MiB of it free)"
        )
        beyond = rss - (vm.memory_mib - free)
        print(f"{'vm QEMU memory beyond the guest (upper bound)':<44} {beyond:10.1f} MiB")
    print(f"{'vm QEMU smaps: guest RAM resident':<44} {memory.guest_ram:10.1f} MiB")
    print(f"{'vm QEMU smaps: TCG translation cache':<44} {memory.translation_cache:10.1f} MiB")
    print(f"{'vm QEMU smaps: its other anonymous memory':<44} {memory.own_anonymous:10.1f} MiB")
    print(f"{'vm QEMU smaps: file pages (shared page cache)':<44} {memory.file_backed:10.1f} MiB")
    ok = "ok" if memory.beyond_guest <= 20 else "OVER GOAL"
    print(
        f"{'vm QEMU memory beyond the guest (smaps)':<44} {memory.beyond_guest:10.1f} MiB"
        f"   goal <= 20 MiB {ok}; without the translation cache (as under KVM)"
        f" {memory.own_anonymous:.1f} MiB"
    )


def _qemu_pid(vm: Any) -> int:
    guests = [g for gs in vm._idle.values() for g in gs]
    return int(guests[0].process.pid)


def _guest_free_mib(vm: Sandbox, workspace: Path) -> float | None:
    log = MemoryLog()
    step = Step(name="meminfo", run="cat /proc/meminfo", shell=("sh", "-c"))
    vm.run(step, workspace, log, env=ENV, cancel=threading.Event(), label="bench-mem")
    for text in bytes(log.data).decode().splitlines():
        if text.startswith("MemFree:"):
            return int(text.split()[1]) / 1024
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--boots", type=int, default=3)
    parser.add_argument("--vm-allow-emulation", action="store_true")
    parser.add_argument("--docker-url")
    parser.add_argument("--docker-image")
    parser.add_argument("--mixed-load", action="store_true", help="the placement benchmark only")
    parser.add_argument("--runs", type=int, default=3, help="runs of the mixed load")
    parser.add_argument(
        "--real", action="store_true", help="also run the mixed load on real workers"
    )
    parser.add_argument(
        "--scale-to-zero", action="store_true", help="latent workers only (scale_to_zero.py)"
    )
    parser.add_argument(
        "--process-only", action="store_true", help="scale to zero: no Docker launcher case"
    )
    parser.add_argument(
        "--vm-launcher", action="store_true", help="scale to zero: the VM launcher too (minutes)"
    )
    args = parser.parse_args()
    if args.scale_to_zero:
        from scale_to_zero import scale_to_zero_figures

        scale_to_zero_figures(max(args.runs, 5), docker=not args.process_only, vm=args.vm_launcher)
        return
    if args.mixed_load:
        from mixed_load import mixed_load_figures

        mixed_load_figures(args.runs)
        if args.real:
            from mixed_load_real import mixed_load_real

            mixed_load_real(args.runs)
        return

    area = Path(tempfile.mkdtemp(prefix="sauci-compute-", dir="/tmp"))
    area.chmod(0o711)
    workspace = area / "ws"
    workspace.mkdir()
    try:
        bare = median_time(lambda: subprocess.run(["sh", "-c", "true"], check=True), args.repeat)
        print(f"{'bare sh -c true':<44} {bare * 1000:10.1f} ms")

        if shutil.which("bwrap"):
            from sauci.sandbox.namespace import NamespaceSandbox

            ns = NamespaceSandbox(cgroup_prefix="sauci-compute-")
            line(
                "namespace step sh -c true",
                median_time(step_once(ns, workspace), args.repeat),
                bare,
            )
            ns.close()
        else:
            print("NamespaceSandbox: skipped, bwrap is not installed")

        if args.docker_url and args.docker_image:
            from sauci.sandbox.docker import DockerSandbox

            docker = DockerSandbox(
                base_url=args.docker_url, image=args.docker_image, owner="sauci-compute"
            )
            t = median_time(step_once(docker, workspace), max(5, args.repeat // 4))
            line("docker step sh -c true (a container each)", t, bare)
            docker.close()
        else:
            print("DockerSandbox: skipped (give --docker-url and --docker-image)")

        if shutil.which("qemu-system-x86_64"):
            vm_figures(area, bare, args)
        else:
            print("VmSandbox: skipped, qemu-system-x86 is not installed")
    finally:
        shutil.rmtree(area, ignore_errors=True)


if __name__ == "__main__":
    main()
