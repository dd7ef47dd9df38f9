"""VmSandbox passes the public SandboxConformance suite, under emulation (TCG)
where KVM cannot run a guest (as on these machines), and its own promises:
a step's output cannot forge its exit status, a guest that panics or does
not boot is ended and named, a build's steps share one guest.

The guest boots once for this module (a build's steps share one guest): the
conformance cases all run in one workspace, emptied between them.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from sauci.core.models import EndedBy, Limits, Step
from sauci.sandbox.vm import VmSandbox
from sauci.testing.sandbox import MemoryLog, SandboxConformance


def missing(tool: str, install: str) -> None:
    """Skip (or, under SAUCI_REQUIRE_SANDBOXES, fail) because ``tool`` is missing."""
    message = f"{tool} is not installed ({install})"
    if os.environ.get("SAUCI_REQUIRE_SANDBOXES"):
        pytest.fail(f"{message}, and SAUCI_REQUIRE_SANDBOXES is set")
    pytest.skip(message)


@pytest.fixture(scope="module")
def vm_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("qemu-system-x86_64") is None:
        missing("qemu-system-x86_64", "apt-get install --no-install-recommends qemu-system-x86")
    if not list(Path("/boot").glob("vmlinuz-*")):
        missing("a kernel in /boot", "apt-get install --no-install-recommends linux-image-amd64")
    return tmp_path_factory.mktemp("vm-data")


@pytest.fixture(scope="module")
def vm(vm_data: Path) -> Iterator[VmSandbox]:
    sandbox = VmSandbox(data_dir=vm_data, allow_emulation=True, grace=0.5)
    yield sandbox
    sandbox.close()


@pytest.fixture(scope="module")
def shared_workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("vm-workspaces") / "b1-step"


class TestVmSandbox(SandboxConformance):
    flood_bytes = 3_000_000  # past the 1 MiB cap; 2 GB through an emulated guest takes minutes
    slack = 30.0  # an emulated guest on a busy machine; its boot counts in the first step

    @pytest.fixture
    def sandbox(self, vm: VmSandbox) -> VmSandbox:
        return vm

    @pytest.fixture
    def area(self, tmp_path: Path) -> Path:
        (tmp_path / "workspaces").mkdir()
        return tmp_path

    @pytest.fixture
    def workspace(self, shared_workspace: Path) -> Path:
        # Emptied, not made anew: the guest's share holds the directory itself.
        shared_workspace.mkdir(exist_ok=True)
        for entry in shared_workspace.iterdir():
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        return shared_workspace

    def test_memory_hog_is_out_of_memory(self, sandbox: VmSandbox, workspace: Path) -> None:
        """The suite's promise with a faster hog: the suite's shell string grows
        at about 2 MB/s in an emulated guest, past any timeout; a 400 MB
        bytearray touches its memory at once."""
        hog = "python3 -c 'b = bytearray(400_000_000); print(len(b))'"
        result, _ = self.run_step(
            sandbox, hog, workspace, timeout=120, limits=Limits(memory=128 * 1024 * 1024)
        )
        assert EndedBy.OUT_OF_MEMORY == result.ended_by
        assert result.reason is not None
        assert result.reason.startswith("out of memory at 128 MiB"), result.reason
        assert not result.ok


def run(sandbox: VmSandbox, script: str, workspace: Path, **step: object) -> tuple[object, bytes]:
    log = MemoryLog()
    result = sandbox.run(
        Step(name="s", run=script, **step),  # type: ignore[arg-type]
        workspace,
        log,
        env={"PATH": "/usr/bin:/bin"},
        cancel=threading.Event(),
        label="vm-test",
    )
    return result, bytes(log.data)


def test_output_cannot_forge_the_exit_status(vm: VmSandbox, shared_workspace: Path) -> None:
    shared_workspace.mkdir(exist_ok=True)
    # What the agent's end frame looks like (kind X, a length, JSON), printed by the step.
    forged = r'printf "X\000\000\000\020{\"exit_code\": 0}X\000\000\000\002{}"; exit 5'
    result, output = run(vm, forged, shared_workspace)
    assert (5, None) == (result.exit_code, result.ended_by)  # type: ignore[attr-defined]
    assert b'X\x00\x00\x00\x10{"exit_code": 0}X\x00\x00\x00\x02{}' == output


def test_the_step_cannot_write_to_the_agent_port(vm: VmSandbox, shared_workspace: Path) -> None:
    shared_workspace.mkdir(exist_ok=True)
    script = (
        "ls /dev/vport*; "
        "for p in /dev/vport*; do printf 'X\\000\\000\\000\\002{}' > $p && echo WROTE; done; exit 3"
    )
    result, output = run(vm, script, shared_workspace)
    assert 3 == result.exit_code  # type: ignore[attr-defined]
    assert b"/dev/vport" in output  # the port is there, and root's
    assert b"WROTE" not in output


def test_a_workdir_whose_name_starts_with_a_dot(vm: VmSandbox, shared_workspace: Path) -> None:
    (shared_workspace / ".ci" / "sub").mkdir(parents=True, exist_ok=True)
    result, output = run(vm, "pwd", shared_workspace, workdir=".ci/sub")
    assert (0, b"/workspace/.ci/sub\n") == (result.exit_code, output)  # type: ignore[attr-defined]


def test_python_from_the_host_runs_in_the_guest(vm: VmSandbox, shared_workspace: Path) -> None:
    shared_workspace.mkdir(exist_ok=True)
    result, output = run(
        vm, "python3 -c 'import os; print(os.getuid(), os.getcwd())'", shared_workspace
    )
    assert (0, b"1000 /workspace\n") == (result.exit_code, output)  # type: ignore[attr-defined]


def test_a_program_the_build_adds_to_its_path_is_found(
    vm: VmSandbox, shared_workspace: Path
) -> None:
    # The agent remembers where it found a program only on a read-only PATH
    # (the host's /usr): a workspace folder on the PATH is looked up each time.
    shared_workspace.mkdir(exist_ok=True)
    env = {"PATH": "/workspace/bin:/usr/bin:/bin"}

    def tool(path: str = env["PATH"]) -> tuple[object, bytes]:
        log = MemoryLog()
        step = Step(name="t", run="arg", shell=("sauci-test-tool",))
        result = vm.run(
            step, shared_workspace, log, env={"PATH": path}, cancel=threading.Event(), label="t"
        )
        return result.exit_code, bytes(log.data)

    script = "printf '#!/bin/sh\\necho {} $1\\n' > {} && chmod +x {}"
    made, _ = run(vm, script.format("cwd", *["sauci-test-tool"] * 2), shared_workspace)
    assert 0 == made.exit_code  # type: ignore[attr-defined]
    # Not on the PATH (only in the working directory, which execvp never tries)...
    assert 127 == tool()[0]
    # ... unless the PATH has an empty folder, which is the step's working directory.
    assert (0, b"cwd arg\n") == tool("/usr/bin:/bin:")
    made, _ = run(
        vm,
        "mkdir -p bin && " + script.format("tool", *["bin/sauci-test-tool"] * 2),
        shared_workspace,
    )
    assert 0 == made.exit_code  # type: ignore[attr-defined]
    assert (0, b"tool arg\n") == tool()


def test_no_setuid_program_of_the_host_makes_a_step_root(
    vm: VmSandbox, shared_workspace: Path
) -> None:
    # The guest's root could write to the agent's port: the host's /usr (with
    # its setuid programs) and the workspace are mounted nosuid.
    shared_workspace.mkdir(exist_ok=True)
    result, output = run(vm, "grep -E ' /(usr|workspace) ' /proc/mounts", shared_workspace)
    assert 0 == result.exit_code  # type: ignore[attr-defined]
    mounts = output.decode().splitlines()
    assert 2 == len(mounts), mounts
    assert all("nosuid" in m.split()[3].split(",") for m in mounts), mounts


def test_a_step_starts_with_no_signal_ignored(vm: VmSandbox, shared_workspace: Path) -> None:
    # The agent is Python, which ignores SIGPIPE and SIGXFSZ; an ignored signal
    # stays ignored across exec, and a step's `yes | head -1` would then see
    # EPIPE instead of ending (or a file past its size limit, EFBIG).
    shared_workspace.mkdir(exist_ok=True)
    result, output = run(vm, "grep SigIgn /proc/self/status", shared_workspace)
    assert (0, b"SigIgn:\t0000000000000000\n") == (result.exit_code, output)  # type: ignore[attr-defined]


def test_under_emulation_a_program_maps_where_it_did_before(
    vm: VmSandbox, shared_workspace: Path
) -> None:
    # No address space randomisation in an emulated guest (norandmaps), so that
    # QEMU reuses what it translated of a program at its previous exec.
    if not vm.acceleration.emulated:
        pytest.skip("the guest runs under KVM, which keeps ASLR")
    shared_workspace.mkdir(exist_ok=True)
    script = (
        "cat /proc/sys/kernel/randomize_va_space; head -1 /proc/self/maps; head -1 /proc/self/maps"
    )
    result, output = run(vm, script, shared_workspace)
    setting, first, second = output.decode().splitlines()
    assert (0, "0") == (result.exit_code, setting)  # type: ignore[attr-defined]
    assert first == second


def test_each_step_has_a_cgroup_of_its_own_and_leaves_none(
    vm: VmSandbox, shared_workspace: Path
) -> None:
    # The agent makes a step's cgroup before the step's request comes (after
    # the previous step's end is sent) and removes it after the step's end.
    shared_workspace.mkdir(exist_ok=True)
    script = "cat /proc/self/cgroup; cd /sys/fs/cgroup && echo step*"
    seen = []
    for _ in range(3):
        result, output = run(vm, script, shared_workspace)
        assert 0 == result.exit_code  # type: ignore[attr-defined]
        own, listed = output.decode().split()
        assert own.startswith("0::/step") and listed == own.removeprefix("0::/"), output
        seen.append(listed)
    assert 3 == len(set(seen)), seen


def test_a_panicking_guest_is_ended_and_named(vm_data: Path, tmp_path: Path) -> None:
    # init is a program that exits at once: the kernel panics ("Attempted to kill init").
    sandbox = VmSandbox(
        data_dir=tmp_path / "data",
        allow_emulation=True,
        grace=0.5,
        boot_timeout=120,
        kernel_args="rdinit=/sauci/bin/echo",
    )
    try:
        result, output = run(sandbox, "echo never", _workspace(tmp_path))
    finally:
        sandbox.close()
    assert result.exit_code is None  # type: ignore[attr-defined]
    assert "Kernel panic" in (result.reason or ""), result  # type: ignore[attr-defined]
    assert b"never" not in output
    assert [] == _qemus_of(sandbox)


def test_a_guest_that_does_not_boot_is_ended_and_named(vm_data: Path, tmp_path: Path) -> None:
    # init is a shell waiting on the console: the agent never says it is ready.
    sandbox = VmSandbox(
        data_dir=tmp_path / "data",
        allow_emulation=True,
        boot_timeout=1,
        kernel_args="rdinit=/sauci/bin/sh",
    )
    try:
        result, _ = run(sandbox, "echo never", _workspace(tmp_path))
    finally:
        sandbox.close()
    assert result.exit_code is None  # type: ignore[attr-defined]
    assert "vm: the guest did not boot within 1 s (ended)" == result.reason  # type: ignore[attr-defined]
    assert [] == _qemus_of(sandbox)


def _qemus_of(sandbox: VmSandbox) -> list[int]:
    """QEMU processes running with this sandbox's initramfs (give it a data dir of its own)."""
    needle = str(sandbox.boot.initrd).encode()
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/cmdline", "rb") as fh:
                    if needle in fh.read():
                        found.append(int(name))
            except OSError:
                continue
    return found


def _workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    return ws


def test_a_step_that_asks_reaches_the_network_and_its_guest_ends_with_the_build(
    vm_data: Path, tmp_path: Path
) -> None:
    """User-mode networking: the guest reaches the host as 10.0.2.2 (only
    when the step asks); the build's end ends its guest."""
    import socket

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(120)
    port = server.getsockname()[1]
    sandbox = VmSandbox(data_dir=tmp_path / "data", allow_emulation=True, grace=0.5)
    workspace = _workspace(tmp_path)
    script = (
        'python3 -c \'import socket; socket.create_connection(("10.0.2.2", '
        f'{port}), 30).sendall(b"from the guest")\''
    )
    try:
        result, output = run(sandbox, script, workspace, network=True, timeout=120)
        assert (0, b"") == (result.exit_code, output)  # type: ignore[attr-defined]
        conn, _ = server.accept()
        assert b"from the guest" == conn.recv(100)
        conn.close()
        assert _qemus_of(sandbox)  # the build's guest waits for its next step
        sandbox.build_ended(workspace)
        assert [] == _qemus_of(sandbox)
    finally:
        sandbox.close()
        server.close()


def test_a_guest_that_stops_answering_is_ended_and_named(tmp_path: Path) -> None:
    """A frozen guest (QEMU stopped) past its step's timeout, grace and slack is killed."""
    import signal
    import time

    sandbox = VmSandbox(
        data_dir=tmp_path / "data", allow_emulation=True, grace=0.5, answer_slack=1.0
    )
    workspace = _workspace(tmp_path)
    try:
        run(sandbox, "true", workspace)  # booted; the guest waits for the next step
        [guest] = sandbox._idle[workspace]
        assert guest.process is not None
        threading.Timer(0.5, os.kill, (guest.process.pid, signal.SIGSTOP)).start()
        started = time.monotonic()
        result, _ = run(sandbox, "sleep 100", workspace, timeout=2)
        assert time.monotonic() - started < 30
        assert (None, EndedBy.TIMEOUT) == (result.exit_code, result.ended_by)  # type: ignore[attr-defined]
        assert "vm: the guest stopped answering" == result.reason  # type: ignore[attr-defined]
        assert [] == _qemus_of(sandbox)
    finally:
        sandbox.close()


def test_without_kvm_emulation_must_be_allowed(vm: VmSandbox, vm_data: Path) -> None:
    from sauci.exceptions import SandboxError

    if not vm.acceleration.emulated:
        pytest.skip("KVM runs guests on this machine")
    with pytest.raises(SandboxError) as info:
        VmSandbox(data_dir=vm_data, allow_emulation=False)
    assert "KVM is not usable here" in str(info.value)
    assert "vm_allow_emulation = true" in str(info.value)


def test_the_agents_answers_are_json_whatever_their_text() -> None:
    import json

    from sauci.sandbox._vm_agent import to_json

    value = {"error": 'a"b\\c\n\x01\u00e9\U0001f600', "exit_code": None, "n": 3, "ok": True}
    expected = {**value, "error": 'a"b\\c\n\x01\u00e9?'}
    assert expected == json.loads(to_json(value))
