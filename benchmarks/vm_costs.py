"""What a VmSandbox guest costs the host, read from /proc: QEMU's CPU time
(user + system, all its threads) and its memory by kind, for
``benchmarks/compute.py``.

Run alone, it boots guests and times steps by shell, with QEMU's CPU time
beside each wall time (a figure that moves less with the machine's load), and
a bare ``sh -c true`` on the host in the same run:

    python benchmarks/vm_costs.py [--boots N] [--steps N] [--shells sh,bash,busybox]

``sh`` is ``sh -c true`` (the host's dash, as compute.py runs it), ``bash``
the steps' default shell (``bash -eo pipefail -c true``), ``busybox`` the
initramfs's static ``busybox sh -c true``: what is left of a step without a
dynamic program. One JSON line: run it in turns with another tree
(``PYTHONPATH=...``) and compare the medians.

Memory, from ``/proc/PID/smaps``:

- the guest's RAM: QEMU's anonymous mapping of ``-m`` MiB, resident as far
  as the guest has touched it (transparent huge pages round that up to 2 MiB);
- the TCG translation cache: QEMU's one writable and executable anonymous
  mapping (``-accel tcg,tb-size=N``), which KVM does not have;
- QEMU's own other anonymous memory: its heap, thread stacks, device state,
  and the pages of its libraries it relocated (copied on write);
- file-backed pages (QEMU's binary and libraries, the kernel and initramfs it
  maps) as they are on disk: the host's page cache, shared by every guest
  that boots the same files, so counted once per host rather than per guest.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import attrs

MIB = 1024 * 1024
_MAPPING = re.compile(r"^[0-9a-f]+-[0-9a-f]+ ")


@attrs.frozen(kw_only=True)
class QemuMemory:
    """A guest's QEMU process's resident memory, in MiB, by kind."""

    guest_ram: float
    translation_cache: float
    own_anonymous: float
    file_backed: float

    @property
    def beyond_guest(self) -> float:
        """What one more guest costs the host beyond its own RAM: QEMU's anonymous memory."""
        return self.translation_cache + self.own_anonymous


def qemu_cpu_seconds(pid: int) -> float:
    """User + system CPU time of the process ``pid`` (every thread of it), in seconds."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def qemu_rss_mib(pid: int) -> float | None:
    """The resident set of the process ``pid`` (VmRSS), in MiB."""
    with open(f"/proc/{pid}/status") as fh:
        for text in fh:
            if text.startswith("VmRSS:"):
                return int(text.split()[1]) / 1024
    return None


def qemu_memory(pid: int, guest_mib: int) -> QemuMemory:
    """QEMU's resident memory by kind (see the module docstring)."""
    mappings: list[dict[str, object]] = []
    with open(f"/proc/{pid}/smaps") as fh:
        for line in fh:
            if _MAPPING.match(line):
                head = line.split()
                start, end = (int(x, 16) for x in head[0].split("-"))
                name = head[5] if len(head) > 5 else ""
                mappings.append({"size": end - start, "perm": head[1], "name": name})
            elif ":" in line and mappings:
                key, _, value = line.partition(":")
                parts = value.split()
                if parts and parts[0].isdigit():
                    mappings[-1][key] = int(parts[0]) * 1024
    anonymous = [m for m in mappings if not str(m["name"]).startswith("/")]
    ram = max(
        (m for m in anonymous if int(m["size"]) >= guest_mib * MIB),  # type: ignore[call-overload]
        key=lambda m: int(m["size"]),  # type: ignore[call-overload]
        default=None,
    )
    cache = [m for m in anonymous if m is not ram and m["perm"] == "rwxp"]
    others = [m for m in anonymous if m is not ram and m not in cache]
    files = [m for m in mappings if str(m["name"]).startswith("/")]

    def total(group: list[dict[str, object]], key: str) -> float:
        return sum(int(m.get(key, 0)) for m in group) / MIB  # type: ignore[call-overload]

    return QemuMemory(
        guest_ram=total([ram] if ram else [], "Rss"),
        translation_cache=total(cache, "Rss"),
        # A library's relocated pages are anonymous too (copied on write): QEMU's own.
        own_anonymous=total(others, "Anonymous") + total(files, "Anonymous"),
        file_backed=total(files, "Rss") - total(files, "Anonymous"),
    )


SHELLS = {
    "sh": ("sh", "-c"),
    "bash": ("bash", "-eo", "pipefail", "-c"),
    "busybox": ("/sauci/bin/busybox", "sh", "-c"),
}


def main() -> None:
    from sauci.core.models import Step
    from sauci.sandbox.vm import VmSandbox
    from sauci.testing.sandbox import MemoryLog

    parser = argparse.ArgumentParser(description="VM guests' boots and steps, wall and QEMU CPU")
    parser.add_argument("--boots", type=int, default=3)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--shells", default="sh,bash,busybox")
    parser.add_argument("--data-dir", help="where the boot files are kept (default: made anew)")
    args = parser.parse_args()
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin"}
    area = Path(tempfile.mkdtemp(prefix="sauci-vm-costs-", dir="/tmp"))
    area.chmod(0o711)
    vm = VmSandbox(data_dir=args.data_dir or area / "data", allow_emulation=True)

    def run(step: Step, workspace: Path) -> float | None:
        """Runs ``step``; returns when its first output came (None: it printed nothing)."""
        first: list[float] = []

        class Log(MemoryLog):
            def write(self, data: bytes) -> None:
                if data and not first:
                    first.append(time.perf_counter())
                super().write(data)

        result = vm.run(step, workspace, Log(), env=env, cancel=threading.Event(), label="vm-costs")
        assert result.exit_code == 0, result
        return first[0] if first else None

    def qemu_pid() -> int:
        return int(next(g for gs in vm._idle.values() for g in gs).process.pid)

    out: dict[str, Any] = {"load": os.getloadavg()[0], "accel": vm.acceleration.accel}
    bare = []
    for _ in range(args.steps):
        started = time.perf_counter()
        subprocess.run(["sh", "-c", "true"], check=True)
        bare.append(time.perf_counter() - started)
    out["bare_sh_ms"] = round(statistics.median(bare) * 1000, 2)  # on the host, this run
    walls, cpus = [], []
    try:
        for n in range(args.boots):
            workspace = area / f"build-{n}"
            workspace.mkdir()
            started = time.perf_counter()
            first = run(Step(name="first", run="echo first", shell=("sh", "-c")), workspace)
            assert first is not None
            walls.append(round(first - started, 3))
            cpus.append(qemu_cpu_seconds(qemu_pid()))  # to the first step's end
            if n < args.boots - 1:
                vm.build_ended(workspace)
        out["boot_wall_s"], out["boot_qemu_cpu_s"] = walls, cpus
        pid = qemu_pid()
        for name in args.shells.split(","):
            step = Step(name=name, run="true", shell=SHELLS[name])
            run(step, workspace)  # warm: the guest's page cache and QEMU's translations
            times = []
            cpu = qemu_cpu_seconds(pid)
            for _ in range(args.steps):
                started = time.perf_counter()
                run(step, workspace)
                times.append(time.perf_counter() - started)
            out[name] = {
                "wall_ms": round(statistics.median(times) * 1000, 1),
                "qemu_cpu_ms": round((qemu_cpu_seconds(pid) - cpu) / args.steps * 1000, 1),
            }
        out["load_end"] = os.getloadavg()[0]
    finally:
        vm.close()
        shutil.rmtree(area, ignore_errors=True)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
