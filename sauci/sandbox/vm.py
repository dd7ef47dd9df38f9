"""VmSandbox: a build's steps in a QEMU guest, booted once per build.

The guest (``-M microvm``) boots the host's Debian kernel with an initramfs
SauCI builds once and caches (:mod:`sauci.sandbox._vm_image`). It sees the
host's /usr read-only and the build's workspace read-write (virtio-9p), and
nothing else of the host: no other workspace, no data directory, no /home,
no /etc, no process, no network unless a step asks for it and the policy
allows it (QEMU user-mode networking). A small agent in the guest
(:mod:`sauci.sandbox._vm_agent`) runs each step as uid 1000 in a cgroup
with the step's memory, process and CPU limits, ends it on timeout or
cancel, and ends whatever it left behind. Output and the exit status come
back over a virtio-serial port in length-prefixed frames the step cannot
forge (docs/sandboxes.md).

Acceleration is probed, not assumed (:mod:`sauci.sandbox._vm_accel`): KVM
when a guest runs under it here, else emulation (TCG) only when the operator
allows it (``allow_emulation``; setting ``vm_allow_emulation``).
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
from pathlib import Path
from typing import Any

from sauci._logging import get_logger
from sauci.core.models import EndedBy, StepResult
from sauci.core.paths import default_data_dir
from sauci.exceptions import SandboxError
from sauci.sandbox._handover import forget_hand_over, hand_over, workspace_written
from sauci.sandbox._steps import (
    ISOLATED,
    Job,
    StepSandbox,
    ended_result,
    find_program,
    out_of_memory,
    process_limit,
)
from sauci.sandbox._vm_accel import Acceleration, probe_kvm
from sauci.sandbox._vm_guest import Guest, GuestFailed, Shape, qemu_command
from sauci.sandbox._vm_image import UID, boot_files

__all__ = ["VmSandbox"]

log = get_logger(__name__)

MIB = 1024 * 1024
GUEST_OVERHEAD_MIB = 192  # the guest's kernel, page cache and agent, beside a step's limit


class VmSandbox(StepSandbox):
    """Runs a build's steps in a QEMU guest of its own (booted at its first step).

    ``data_dir``: where the initramfs and the KVM probe's answer are cached
    (``<data_dir>/vm``). ``allow_emulation``: boot under TCG when KVM is not
    usable (slow: seconds to boot); without it such a machine refuses the
    sandbox (None: the environment variable ``SAUCI_VM_ALLOW_EMULATION``, as
    the settings read it). ``accel``: ``"kvm"`` or ``"tcg"`` to skip the probe.
    ``memory_mib`` and ``cpus``: the smallest guest; a step whose limits ask
    for more gets a guest that large. ``network``: whether a step that asks
    (``network: true``) may have user-mode networking; steps that do not ask
    never have it. ``grace``: between SIGTERM and SIGKILL inside the guest.
    ``boot_timeout``: a guest not up by then is ended (default 10 s under
    KVM, 90 s under emulation). ``processes``: the process limit of a step
    that sets none. ``kernel_args``: added to the guest kernel's command line.
    """

    kind = "vm"
    capabilities: frozenset[str] = ISOLATED

    def __init__(
        self,
        *,
        data_dir: str | Path | None = None,
        qemu: str = "qemu-system-x86_64",
        kernel: str | Path | None = None,
        allow_emulation: bool | None = None,
        accel: str | None = None,
        memory_mib: int = 512,
        cpus: int = 1,
        network: bool = True,
        grace: float = 5.0,
        boot_timeout: float | None = None,
        kvm_probe_timeout: float = 5.0,
        processes: int = 1024,
        answer_slack: float = 20.0,
        kernel_args: str = "",
    ) -> None:
        self.qemu = find_program(
            qemu, "QEMU", "--no-install-recommends qemu-system-x86 linux-image-amd64"
        )
        self.cache_dir = Path(data_dir or default_data_dir()) / "vm"
        self.boot = boot_files(self.cache_dir, kernel)
        if allow_emulation is None:  # as load_settings reads it: `sauci run --sandbox vm` too
            allow_emulation = _truthy(os.environ.get("SAUCI_VM_ALLOW_EMULATION", ""))
        self.acceleration = self._accelerate(accel, allow_emulation, kvm_probe_timeout)
        self.boot_timeout = boot_timeout or (90.0 if self.acceleration.emulated else 10.0)
        self.memory_mib, self.cpus = memory_mib, cpus
        self.network_allowed = network
        self.grace = grace
        self.processes = processes
        self.answer_slack = answer_slack
        self.kernel_args = kernel_args
        # Root runs QEMU as uid 1000 (as the Docker sandbox runs its steps), and
        # the step is uid 1000 in the guest; anyone else runs both as itself.
        self.run_as = (UID, UID) if os.geteuid() == 0 else None
        self.ids = self.run_as or (os.getuid(), os.getgid())
        self._idle: dict[Path, list[Guest]] = {}
        self._busy: set[Guest] = set()
        self._lock = threading.Lock()

    def _accelerate(self, accel: str | None, allow: bool, timeout: float) -> Acceleration:
        if accel is not None:
            if accel not in ("kvm", "tcg"):
                raise SandboxError(f"accel must be 'kvm' or 'tcg', not {accel!r}")
            return Acceleration(accel=accel, kvm_problem=None if accel == "kvm" else "not asked")
        problem = probe_kvm(self.qemu, self.boot.kernel, timeout=timeout, cache_dir=self.cache_dir)
        if problem is None:
            acceleration = Acceleration(accel="kvm")
        elif allow:
            acceleration = Acceleration(accel="tcg", kvm_problem=problem)
        else:
            raise SandboxError(
                f"KVM is not usable here: {problem}. Emulation (TCG) boots guests in "
                "seconds, not milliseconds; allow it with vm_allow_emulation = true "
                "(--vm-allow-emulation, SAUCI_VM_ALLOW_EMULATION=1)"
            )
        log.info(
            "vm_acceleration",
            accel=acceleration.accel,
            kvm_problem=acceleration.kvm_problem,
            kernel=str(self.boot.kernel),
        )
        return acceleration

    @property
    def start_note(self) -> str:
        """What ``sauci serve`` says at start about the guests' acceleration."""
        if not self.acceleration.emulated:
            return "vm guests under KVM"
        why = self.acceleration.kvm_problem or "not asked"
        return f"vm guests under emulation (TCG; KVM: {why})"

    # -- guests of a build ------------------------------------------------------

    def build_ended(self, workspace: Path) -> None:
        """The build in ``workspace`` ended: its guests are ended (the executor calls this)."""
        forget_hand_over(workspace)
        with self._lock:
            guests = self._idle.pop(Path(os.path.abspath(workspace)), [])
        for guest in guests:
            guest.end()

    def workspace_written(self, workspace: Path) -> None:
        """SauCI wrote into ``workspace`` between steps: the next step's
        hand-over walks it again (the executor calls this)."""
        workspace_written(workspace)

    def close(self) -> None:
        with self._lock:
            guests = [g for gs in self._idle.values() for g in gs] + list(self._busy)
            self._idle.clear()
        for guest in guests:
            guest.end()

    def _take(self, job: Job, shape: Shape) -> Guest:
        """An idle guest of this build that holds ``shape``, or a new one booted for it."""
        with self._lock:
            idle = self._idle.get(job.workspace, [])
            dead = [guest for guest in idle if not guest.alive]  # QEMU ended while idle
            for guest in dead:
                idle.remove(guest)
            found = next((guest for guest in idle if guest.shape.holds(shape)), None)
            if found is not None:
                idle.remove(found)
                self._busy.add(found)
        for guest in dead:
            guest.end()
        if found is not None:
            return found
        guest = Guest(
            lambda agent, console: qemu_command(
                self.qemu,
                self.boot,
                accel=self.acceleration.accel,
                shape=shape,
                workspace=job.workspace,
                agent=agent,
                console=console,
                extra_append=self.kernel_args,
                run_as=self.run_as,
            ),
            shape,
        )
        with self._lock:
            self._busy.add(guest)
        try:
            seconds = guest.boot(self.boot_timeout, job.cancel.is_set)
        except BaseException:
            self._release(job, guest, keep=False)
            raise
        log.info(
            "vm_guest_booted",
            label=job.label,
            seconds=round(seconds, 3),
            accel=self.acceleration.accel,
            memory_mib=shape.memory_mib,
            cpus=shape.cpus,
        )
        return guest

    def _release(self, job: Job, guest: Guest, *, keep: bool) -> None:
        with self._lock:
            self._busy.discard(guest)
            if keep and guest.alive:
                self._idle.setdefault(job.workspace, []).append(guest)
                return
        guest.end()

    # -- running -------------------------------------------------------------

    def _run(self, job: Job) -> StepResult:
        step = job.step
        if self.run_as is not None:  # QEMU runs as the step's uid: the workspace is its
            hand_over(job.workspace, *self.run_as, job.env.get("SAUCI_BUILD_ID"))
        memory = step.limits.memory
        cpu = step.limits.cpu
        shape = Shape(
            memory_mib=max(self.memory_mib, math.ceil((memory or 0) / MIB) + GUEST_OVERHEAD_MIB),
            cpus=max(self.cpus, math.ceil(cpu or 0)),
            network=bool(step.network) and self.network_allowed,
        )
        try:
            guest = self._take(job, shape)
        except GuestFailed as exc:
            if job.cancel.is_set():
                return StepResult(
                    exit_code=None,
                    ended_by=EndedBy.CANCELLED,
                    reason="cancelled",
                    duration=time.monotonic() - job.started,
                )
            return self._failed(job, f"vm: {exc}")
        keep = False
        try:
            result = self._converse(job, guest, shape)
            keep = True
            return result
        except GuestFailed as exc:
            return self._failed(job, f"vm: {exc}")
        finally:
            self._release(job, guest, keep=keep)

    def _converse(self, job: Job, guest: Guest, shape: Shape) -> StepResult:
        step = job.step
        limits = step.limits
        request: dict[str, Any] = {
            "op": "run",
            "argv": [*step.shell, step.script()],
            "env": dict(job.env),
            "cwd": _guest_path(job),
            "uid": self.ids[0],
            "gid": self.ids[1],
            "timeout": step.timeout if step.timeout and step.timeout > 0 else None,  # host's
            "grace": self.grace,
            "memory": limits.memory,
            "processes": limits.processes or self.processes,
            "cpu": limits.cpu,
            "network": shape.network,
        }
        guest.send(request)
        timeout = request.pop("timeout")
        deadline = job.started + timeout if timeout else math.inf
        limit = math.inf  # until the step is told to end: then its grace and some slack
        ending = False

        def must_end() -> bool:
            return job.cancel.is_set() or time.monotonic() >= deadline

        while True:
            kind, payload = guest.frame(limit, None if ending else must_end, "")
            if kind == b"O":
                job.log.write(payload)
            elif kind == b"C":  # the host keeps the clock: the guest's may drift under TCG
                ending = True
                why = "cancelled" if job.cancel.is_set() else "timeout"
                guest.send({"op": "end", "why": why})
                limit = time.monotonic() + self.grace + self.answer_slack
            elif kind == b"X":
                return self._result(job, json.loads(payload), shape)
            else:
                raise GuestFailed(f"the guest's agent sent an unknown frame {kind!r}")

    def _result(self, job: Job, answer: dict[str, Any], shape: Shape) -> StepResult:
        if "error" in answer:
            raise GuestFailed(f"the guest's agent failed: {answer['error']}")
        exit_code, sig = answer.get("exit_code"), answer.get("signal")
        ended = answer.get("ended_by")
        limits = job.step.limits

        def limit_hit() -> tuple[EndedBy, str] | None:
            if answer.get("oom_kills"):
                return out_of_memory(limits.memory or shape.memory_mib * MIB)
            if answer.get("pids_max"):
                return process_limit(limits.processes or self.processes)
            return None

        return ended_result(
            job,
            exit_code,
            sig,
            failed=exit_code != 0,
            ended_by=EndedBy(ended) if ended else None,
            limit_hit=limit_hit,
        )

    def _failed(self, job: Job, reason: str) -> StepResult:
        """The guest failed (did not boot, panicked, stopped answering): it is ended."""
        log.warning("vm_guest_failed", label=job.label, reason=reason)
        job.log.write(f"sauci: error: {reason}\n".encode())
        ended_by = None
        if job.cancel.is_set():
            ended_by = EndedBy.CANCELLED
        elif job.step.timeout and time.monotonic() - job.started >= job.step.timeout:
            ended_by = EndedBy.TIMEOUT
        return StepResult(
            exit_code=None,
            duration=time.monotonic() - job.started,
            ended_by=ended_by,
            reason=reason,
            log_truncated=job.log.exceeded,
        )


def _truthy(value: str) -> bool:
    return value.strip().lower() in ("1", "true", "yes", "on")


def _guest_path(job: Job) -> str:
    """The step's working directory as the guest sees it (the workspace is /workspace)."""
    relative = job.cwd.relative_to(job.workspace)
    return "/workspace" if relative == Path(".") else f"/workspace/{relative.as_posix()}"
