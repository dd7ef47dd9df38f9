"""NamespaceSandbox (bubblewrap): the conformance suite, plus what only it promises:
uid 1000 inside, a writable workspace owned by that uid, a read-only host,
no capabilities, network only when asked.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from sauci.core.models import Step
from sauci.exceptions import SandboxError
from sauci.sandbox.namespace import NamespaceSandbox, adopt_workspace
from sauci.testing.sandbox import MemoryLog, SandboxConformance

PREFIX = f"sauci-ns{os.getpid()}-"

pytestmark = pytest.mark.usefixtures("require_bwrap")


def _reachable_area() -> Iterator[Path]:
    """Workspaces where the step's unprivileged host uid can reach them (not 0700 tmp_path)."""
    path = Path(tempfile.mkdtemp(prefix="sauci-ns-", dir="/tmp"))
    path.chmod(0o711)
    yield path
    shutil.rmtree(path, ignore_errors=True)


area = pytest.fixture(_reachable_area, name="area")


def make_sandbox(**kw: object) -> NamespaceSandbox:
    return NamespaceSandbox(grace=0.5, cgroup_prefix=PREFIX, **kw)  # type: ignore[arg-type]


class TestNamespaceSandbox(SandboxConformance):
    extra_env_names = frozenset({"HOME"})  # the build's own HOME; see docs/sandboxes.md

    @pytest.fixture
    def area(self) -> Iterator[Path]:
        yield from _reachable_area()

    @pytest.fixture
    def sandbox(self) -> NamespaceSandbox:
        return make_sandbox()


@pytest.fixture
def workspace(area: Path) -> Path:
    ws = area / "ws"
    ws.mkdir()
    return ws


def run(
    sandbox: NamespaceSandbox, script: str, workspace: Path, **step: object
) -> tuple[int | None, bytes]:
    log = MemoryLog()
    result = sandbox.run(
        Step(name="t", run=script, **step),  # type: ignore[arg-type]
        workspace,
        log,
        env={"PATH": "/usr/bin:/bin"},
        cancel=threading.Event(),
        label="ns-test",
    )
    return result.exit_code, bytes(log.data)


def test_step_runs_as_uid_1000_without_capabilities(workspace: Path) -> None:
    code, output = run(make_sandbox(), "id -u; id -g; grep CapEff /proc/self/status", workspace)
    assert (0, [b"1000", b"1000", b"CapEff:\t0000000000000000"]) == (code, output.splitlines())


def test_checkout_files_are_writable_inside(workspace: Path) -> None:
    # A checkout made by SauCI (root) must be changeable by uid 1000 inside.
    (workspace / "src").mkdir()
    (workspace / "src" / "a.txt").write_text("old\n")
    code, output = run(
        make_sandbox(), "echo new > src/a.txt && mkdir build && stat -c %u src/a.txt", workspace
    )
    assert (0, b"1000\n") == (code, output)
    assert "new\n" == (workspace / "src" / "a.txt").read_text()


def test_root_cannot_be_remounted_or_read_as_root(workspace: Path) -> None:
    script = (
        "mount -o remount,rw / 2>/dev/null && echo REMOUNTED; "
        "cat /etc/shadow 2>/dev/null && echo READ_SHADOW; "
        "ls /root 2>/dev/null | head -1; "
        "(echo x > /sys/fs/cgroup/pids/pids.max) 2>/dev/null && echo WROTE_CGROUP; "
        "unshare -U true 2>/dev/null && echo NESTED_USERNS; true"
    )
    assert (0, b"") == run(make_sandbox(), script, workspace)


def test_private_tmp(workspace: Path) -> None:
    name = f"sauci-ns-probe-{os.getpid()}"
    code, output = run(make_sandbox(), f"echo x > /tmp/{name} && ls /tmp", workspace)
    assert 0 == code
    assert name.encode() in output.split()
    assert not os.path.exists(f"/tmp/{name}")


def test_share_net_reaches_the_host(workspace: Path) -> None:
    if shutil.which("bash") is None:
        pytest.skip("needs bash for /dev/tcp")
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    try:
        code, _ = run(
            make_sandbox(),
            f"exec 3<>/dev/tcp/127.0.0.1/{port}",
            workspace,
            shell=("bash", "-c"),
            network=True,
        )
        assert 0 == code
    finally:
        server.close()


def test_unreachable_workspace_is_a_clear_error() -> None:
    if os.geteuid() != 0:
        pytest.skip("only root hands steps to another uid")
    hidden = Path(tempfile.mkdtemp(prefix="sauci-ns-closed-", dir="/tmp"))  # mode 0700
    try:
        (hidden / "ws").mkdir()
        with pytest.raises(SandboxError, match="cannot reach the workspace"):
            run(make_sandbox(), "true", hidden / "ws")
    finally:
        shutil.rmtree(hidden)


def test_adopt_skips_hard_links_and_symlink_targets(area: Path) -> None:
    outside = area / "outside.txt"
    outside.write_text("keep")
    ws = area / "adopt"
    ws.mkdir()
    (ws / "link").symlink_to(outside)
    os.link(outside, ws / "hard")
    (ws / "own.txt").write_text("x")
    adopt_workspace(ws, 4242, 4242)
    assert (4242, 0, 4242) == (
        (ws / "own.txt").stat().st_uid,
        outside.stat().st_uid,
        os.lstat(ws / "link").st_uid,
    )
