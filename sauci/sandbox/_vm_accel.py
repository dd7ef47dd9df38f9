"""Whether a VmSandbox guest can run under KVM here: asked, not assumed.

/dev/kvm may open, and KVM_CREATE_VM succeed, on a machine whose CPU exposes
no virtualisation to it (a VM without nested VMX): the guest then never runs
an instruction. So the probe boots the kernel under ``-accel kvm`` and waits,
for a bounded time, for its first console byte. The answer is kept under
the data directory for as long as the host stays up (its boot id).
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import time
from pathlib import Path

import attrs

from sauci._logging import get_logger

__all__ = ["Acceleration", "probe_kvm"]

log = get_logger(__name__)

BANNER = b"Linux version"


@attrs.frozen(kw_only=True)
class Acceleration:
    """What the guests run under: ``kvm`` or ``tcg`` (emulation), and why not KVM."""

    accel: str
    kvm_problem: str | None = None

    @property
    def emulated(self) -> bool:
        return self.accel == "tcg"


def probe_kvm(qemu: str, kernel: Path, *, timeout: float, cache_dir: Path | None) -> str | None:
    """None when a guest runs under KVM here; otherwise what is wrong."""
    key = _cache_key(qemu, kernel)
    cache = cache_dir / "kvm-probe.json" if cache_dir is not None else None
    if cache is not None:
        try:
            known = json.loads(cache.read_text())
            if known.get("key") == key:
                return known.get("problem")
        except (OSError, ValueError):
            pass
    problem = _probe(qemu, kernel, timeout)
    log.info("vm_kvm_probe", usable=problem is None, problem=problem)
    if cache is not None:
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            cache.write_text(json.dumps({"key": key, "problem": problem}))
        except OSError:
            pass
    return problem


def _cache_key(qemu: str, kernel: Path) -> str:
    try:
        boot_id = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        boot_id = ""
    return f"{boot_id}|{qemu}|{kernel}"


def _probe(qemu: str, kernel: Path, timeout: float) -> str | None:
    try:
        os.close(os.open("/dev/kvm", os.O_RDWR))
    except OSError as exc:
        return f"/dev/kvm cannot be opened ({exc.strerror})"
    argv = [
        qemu,
        *("-M", "microvm,x-option-roms=off,isa-serial=on,rtc=on", "-accel", "kvm"),
        *("-cpu", "host", "-m", "64", "-nodefaults", "-display", "none", "-no-reboot"),
        *("-kernel", str(kernel), "-append", "console=ttyS0 earlyprintk=serial panic=-1"),
        *("-serial", "stdio"),
    ]
    started = time.monotonic()
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    seen = b""
    try:
        # The kernel's real-mode setup prints ("Probing EDD") even where its
        # protected-mode code never runs: wait for the banner of the kernel proper.
        while time.monotonic() - started < timeout:
            ready, _, _ = select.select([proc.stdout], [], [], 0.1)
            if ready:
                data = os.read(proc.stdout.fileno(), 4096)
                if not data:
                    break
                seen = (seen + data)[-8192:]
                if BANNER in seen:
                    return None
        proc.poll()
        if proc.returncode is not None and proc.returncode != 0:
            err = proc.stderr.read().decode(errors="replace").strip()
            return (
                f"QEMU cannot start a KVM guest: {err.splitlines()[-1] if err else proc.returncode}"
            )
        return (
            f"a KVM guest printed nothing in {time.monotonic() - started:.1f} s "
            "(no usable hardware virtualisation: nested VMX missing?)"
        )
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 9)
        proc.wait()
