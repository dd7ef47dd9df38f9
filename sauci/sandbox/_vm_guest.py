"""One VmSandbox guest from the host's side: the QEMU process (in a process
group of its own, so ending it ends everything it started), the agent's
virtio-serial port as a Unix socket, and the serial console kept in a file
to name a guest that panics or does not come up."""

from __future__ import annotations

import contextlib
import marshal
import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs

from sauci.sandbox._vm_image import BootFiles

__all__ = ["Guest", "GuestFailed", "Shape", "qemu_command"]

HEADER = struct.Struct(">cI")
CONSOLE_TAIL = 4096
PANIC = b"Kernel panic"
TB_CACHE_MIB = 64


class GuestFailed(Exception):
    """The guest cannot (or can no longer) run steps; the message names why."""


@attrs.frozen(kw_only=True)
class Shape:
    """What a guest is booted with; a step that needs more gets another guest."""

    memory_mib: int
    cpus: int
    network: bool

    def holds(self, other: Shape) -> bool:
        return (
            self.memory_mib >= other.memory_mib
            and self.cpus >= other.cpus
            and (self.network or not other.network)
        )


def qemu_command(
    qemu: str,
    boot: BootFiles,
    *,
    accel: str,
    shape: Shape,
    workspace: Path | None,
    agent: Path,
    console: Path,
    extra_append: str = "",
    run_as: tuple[int, int] | None = None,
) -> list[str]:
    """The QEMU command line of one guest (``-M microvm``: virtio-mmio, no PCI, no firmware)."""
    machine = "microvm,x-option-roms=off,isa-serial=on,rtc=on,pit=on,pic=on"
    cpu = "host" if accel == "kvm" else "max"
    # TCG's translated-code cache grows to 1 GiB of QEMU's memory by default;
    # a guest that runs a build's tools needs far less.
    accel_option = accel if accel == "kvm" else f"tcg,tb-size={TB_CACHE_MIB}"
    # TCG gives no stable TSC to calibrate against: say its rate, or boot stalls.
    # Expedited RCU: a guest of a few CPUs ends a grace period at once
    # instead of waiting for ticks, and the kernel waits for them often.
    append = "console=ttyS0 panic=-1 quiet loglevel=3 rcupdate.rcu_expedited=1"
    if accel == "tcg":
        # An emulated CPU's TSC is the host's, with nothing to calibrate it
        # against: say its rate, or the boot stalls (or the guest's clock drifts).
        append += f" tsc=reliable tsc_early_khz={host_tsc_khz()}"
        # Page-table isolation and friends cost an emulated CPU dearly on every
        # system call; the guest holds one build only, so they guard nothing
        # of anyone else's (docs/sandboxes.md).
        append += " mitigations=off cryptomgr.notests"  # self-tests: 0.3 s of an emulated boot
        # No address space randomisation: QEMU finds the code it translated by
        # its virtual address, so a program mapped elsewhere at each exec is
        # translated anew each time (half of a bash step's cost). The guest
        # holds one build, whose steps run code as its uid already: ASLR there
        # guards the build against itself (docs/sandboxes.md). KVM keeps it.
        append += " norandmaps"
    cmd = [
        qemu,
        *("-M", machine, "-accel", accel_option, "-cpu", cpu),
        *("-m", str(shape.memory_mib), "-smp", str(shape.cpus)),
        *("-nodefaults", "-display", "none", "-no-reboot", "-no-user-config"),
        *("-kernel", str(boot.kernel), "-initrd", str(boot.initrd)),
        *("-append", f"{append} {extra_append}".strip()),
        *("-chardev", f"file,id=console,path={console}", "-serial", "chardev:console"),
        *("-fsdev", "local,id=usr,path=/usr,security_model=none,readonly=on"),
        *("-device", "virtio-9p-device,fsdev=usr,mount_tag=usr"),
        # One port (the agent's): the console driver sets up every port the
        # device may have (31 by default), 0.1-0.2 s of an emulated boot.
        *("-device", "virtio-serial-device,max_ports=2"),
        *("-chardev", f"socket,id=agent,path={agent}"),
        *("-device", "virtserialport,chardev=agent,name=sauci"),
    ]
    if workspace is not None:
        # none: QEMU creates files as its own user (the step's uid, see run_as);
        # it never changes an owner or makes a device node on the host.
        cmd += ["-fsdev", f"local,id=workspace,path={workspace},security_model=none"]
        cmd += ["-device", "virtio-9p-device,fsdev=workspace,mount_tag=workspace"]
    # QEMU's own system calls filtered (seccomp): no processes, no obsolete calls,
    # and no set*id calls, but for -runas's own (it drops root after the filter).
    sandbox = "on,obsolete=deny,spawn=deny,resourcecontrol=deny"
    if run_as is None:
        cmd += ["-sandbox", f"{sandbox},elevateprivileges=deny"]
    else:  # root drops to the step's uid once the guest is set up
        cmd += ["-sandbox", sandbox, "-runas", f"{run_as[0]}:{run_as[1]}"]
    if shape.network:
        cmd[cmd.index("-append") + 1] += " sauci.net=1"  # the init script loads virtio-net
        cmd += ["-netdev", "user,id=net", "-device", "virtio-net-device,netdev=net"]
    else:
        cmd += ["-nic", "none"]
    return cmd


def host_tsc_khz() -> int:
    """The host CPU's clock rate in kHz (from /proc/cpuinfo; 2 GHz when it says none)."""
    try:
        with open("/proc/cpuinfo") as fh:
            for text in fh:
                if text.startswith("cpu MHz"):
                    return int(float(text.split(":")[1]) * 1000)
    except (OSError, ValueError, IndexError):
        pass
    return 2_000_000


class Guest:
    """A booted guest: :meth:`boot`, then :meth:`run` step after step, then :meth:`end`."""

    def __init__(self, command: Callable[[Path, Path], list[str]], shape: Shape) -> None:
        self.shape = shape
        self.dir = Path(tempfile.mkdtemp(prefix="sauci-vm-"))
        if len(str(self.dir)) > 80:  # a Unix socket's path must fit in 108 bytes
            os.rmdir(self.dir)
            self.dir = Path(tempfile.mkdtemp(prefix="sauci-vm-", dir="/tmp"))
        self.console = self.dir / "console.log"
        agent = self.dir / "agent.sock"
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(str(agent))
        self.listener.listen(1)
        self.argv = command(agent, self.console)
        self.process: subprocess.Popen[bytes] | None = None
        self.conn: socket.socket | None = None
        self.buffer = b""
        self.boot_seconds: float | None = None

    # -- lifetime -------------------------------------------------------------

    def boot(self, timeout: float, cancel: Callable[[], bool]) -> float:
        """Start QEMU and wait for the agent's hello; returns the seconds it took.
        GuestFailed (and the guest ended) when it does not come up in time."""
        started = time.monotonic()
        self.process = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=open(self.dir / "qemu.err", "wb"),  # noqa: SIM115 - QEMU keeps it
            start_new_session=True,
        )
        deadline = started + timeout
        self.listener.settimeout(0.1)
        while self.conn is None:
            self._check_alive("while booting")
            if cancel():
                self.end()
                raise GuestFailed("cancelled while the guest booted")
            if time.monotonic() > deadline:
                self.end()
                raise GuestFailed(f"the guest did not boot within {timeout:g} s (ended)")
            with contextlib.suppress(TimeoutError):
                self.conn, _ = self.listener.accept()
        try:
            kind, _ = self.frame(deadline, cancel, "while booting")
        except GuestFailed as exc:
            self.end()
            if time.monotonic() >= deadline:
                raise GuestFailed(f"the guest did not boot within {timeout:g} s (ended)") from exc
            raise
        if kind == b"C":
            self.end()
            raise GuestFailed("cancelled while the guest booted")
        if kind != b"R":
            self.end()
            raise GuestFailed(f"the guest's agent sent {kind!r} before saying it was ready")
        self.boot_seconds = time.monotonic() - started
        return self.boot_seconds

    def end(self) -> None:
        """End QEMU's whole process group and remove the guest's files."""
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
        if self.process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(5)
        for sock in (self.conn, self.listener):
            if sock is not None:
                sock.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    # -- the agent ------------------------------------------------------------

    def send(self, message: dict[str, Any]) -> None:
        assert self.conn is not None
        try:
            data = marshal.dumps(message)  # the agent's format (see _vm_agent)
            self.conn.sendall(len(data).to_bytes(4, "big") + data)
        except OSError as exc:
            raise GuestFailed(self._why_gone(f"the guest's port closed ({exc})")) from exc

    def frame(
        self, deadline: float, cancel: Callable[[], bool] | None = None, doing: str = ""
    ) -> tuple[bytes, bytes]:
        """The agent's next frame (kind, payload); GuestFailed when the guest
        ended or ``deadline`` passed (``b"C"`` when ``cancel`` says so first)."""
        assert self.conn is not None
        while True:
            if len(self.buffer) >= HEADER.size:
                kind, size = HEADER.unpack_from(self.buffer)
                if len(self.buffer) >= HEADER.size + size:
                    payload = self.buffer[HEADER.size : HEADER.size + size]
                    self.buffer = self.buffer[HEADER.size + size :]
                    return kind, payload
            if cancel is not None and cancel():
                return b"C", b""
            left = deadline - time.monotonic()
            if left <= 0:
                raise GuestFailed(self._why_gone(f"the guest stopped answering {doing}".strip()))
            ready, _, _ = select.select([self.conn], [], [], min(left, 0.1))
            if ready:
                data = self.conn.recv(1 << 16)
                if not data:
                    raise GuestFailed(self._why_gone(f"the guest ended {doing}".strip()))
                self.buffer += data

    def _check_alive(self, doing: str) -> None:
        if self.process is not None and self.process.poll() is not None:
            raise GuestFailed(self._why_gone(f"QEMU exited {doing}"))

    def _why_gone(self, what: str) -> str:
        """``what`` with the cause the console or QEMU's errors show (a panic)."""
        console = _tail(self.console)
        if PANIC in console:
            line = console[console.index(PANIC) :].split(b"\n", 1)[0]
            what = f"{what}: {line.decode(errors='replace').strip()}"
        elif self.process is not None and _exited(self.process):
            err = _tail(self.dir / "qemu.err").decode(errors="replace").strip()
            if err:
                what = f"{what}: {err.splitlines()[-1]}"
        return what


def _exited(process: subprocess.Popen[bytes]) -> bool:
    """Whether QEMU has exited (given a moment: its port closes just before)."""
    try:
        process.wait(1)
    except subprocess.TimeoutExpired:
        return False
    return True


def _tail(path: Path) -> bytes:
    try:
        with open(path, "rb") as fh:
            fh.seek(max(0, os.fstat(fh.fileno()).st_size - CONSOLE_TAIL))
            return fh.read()
    except OSError:
        return b""
