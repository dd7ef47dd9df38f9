"""Nothing of the server reaches a step in DockerSandbox: not its environment,
not its data dir (only the workspace is mounted), not its processes. Against a
private dockerd with the busybox image.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sauci.core.models import Step, StepResult
from sauci.testing.sandbox import MemoryLog

OWNER = "sauci-test-isolation"


@pytest.fixture
def sandbox(dockerd: str, busybox_image: str) -> Iterator[Any]:
    from sauci.sandbox.docker import DockerSandbox

    sandbox = DockerSandbox(base_url=dockerd, image=busybox_image, owner=OWNER, grace=0.5)
    yield sandbox
    sandbox.sweep(OWNER)
    sandbox.close()


@pytest.fixture
def server_dirs(tmp_path: Path) -> tuple[Path, Path]:
    """A data dir as SauCI keeps it, and a workspace next to it."""
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    workspace = tmp_path / "workspaces" / "b1-step"
    workspace.mkdir(parents=True)
    return data, workspace


def run(sandbox: Any, script: str, workspace: Path, env: dict[str, str]) -> tuple[StepResult, str]:
    log = MemoryLog()
    result = sandbox.run(
        Step(name="t", run=script, shell=("sh", "-c")),
        workspace,
        log,
        env=env,
        cancel=threading.Event(),
        label="b1-isolation",
    )
    return result, bytes(log.data).decode(errors="replace")


def test_server_environment_does_not_reach_the_step(
    sandbox: Any, server_dirs: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = f"SERVERSECRET-{uuid.uuid4().hex}"
    monkeypatch.setenv("SAUCI_TEST_SERVER_MARKER", marker)
    monkeypatch.setenv("HTTP_PROXY", f"http://{marker}@127.0.0.1:9/")  # docker's proxy config
    _, workspace = server_dirs
    script = "env; for f in /proc/[0-9]*/environ; do cat $f; echo; done 2>/dev/null; true"
    result, output = run(sandbox, script, workspace, {"PATH": "/bin", "GIVEN": "yes"})
    assert 0 == result.exit_code, output
    assert "GIVEN=yes" in output  # the step's own environment is there
    assert marker not in output
    assert "SAUCI_TEST_SERVER_MARKER" not in output


def test_data_dir_next_to_the_workspace_is_not_readable(
    sandbox: Any, server_dirs: tuple[Path, Path]
) -> None:
    data, workspace = server_dirs
    secret = f"TOPSECRET-{uuid.uuid4().hex}"
    database = data / "sauci.db"
    database.write_text(secret)
    (workspace / "mine.txt").write_text("from the checkout\n")
    script = (
        f"cat {database} ../../data/sauci.db 2>/dev/null; "
        # Any file with the secret anywhere in the container's tree (the
        # kernel's /proc, /sys and /dev aside: reading them never ends).
        "find / \\( -path /proc -o -path /sys -o -path /dev \\) -prune -o -type f -print 2>/dev/null "
        f"| xargs grep -l {secret} 2>/dev/null; "
        "cat mine.txt; true"
    )
    result, output = run(sandbox, script, workspace, {"PATH": "/bin"})
    assert (0, "from the checkout\n") == (result.exit_code, output)


def test_only_the_workspace_is_mounted(
    sandbox: Any, server_dirs: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, workspace = server_dirs
    created: list[dict[str, Any]] = []
    original = sandbox.api.create_container

    def spy(*args: Any, **kwargs: Any) -> Any:
        created.append(kwargs["host_config"])
        return original(*args, **kwargs)

    monkeypatch.setattr(sandbox.api, "create_container", spy)
    result, _ = run(sandbox, "true", workspace, {"PATH": "/bin"})
    assert 0 == result.exit_code
    [host_config] = created
    # Besides the workspace, only the step agent (the host's static busybox), read-only.
    agent = [f"{sandbox.pool.agent}:/.sauci/busybox:ro"] if sandbox.pool.agent else []
    assert [f"{workspace}:/workspace:rw", *agent] == host_config.get("Binds")
    assert (None, None, None) == (
        host_config.get("Mounts"),
        host_config.get("VolumesFrom"),
        host_config.get("Devices"),
    )


def test_step_cannot_see_or_signal_host_processes(
    sandbox: Any, server_dirs: tuple[Path, Path]
) -> None:
    _, workspace = server_dirs
    marker = f"standin-{uuid.uuid4().hex}"
    # A stand-in for the server: a host process with a recognisable argv.
    server = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(120)", marker],
        stdin=subprocess.DEVNULL,
    )
    try:
        pids = [os.getpid(), server.pid]
        # (SIG''NALLED: the script itself is in ps's output)
        script = (
            "".join(
                f"if kill -0 {p} 2>/dev/null; then echo SIG''NALLED {p}; fi; "
                f"kill -9 {p} 2>/dev/null; "
                for p in pids
            )
            + "ps -o pid,args; for f in /proc/[0-9]*/cmdline; do cat $f; echo; done; true"
        )
        result, output = run(sandbox, script, workspace, {"PATH": "/bin"})
        alive = server.poll() is None
    finally:
        server.kill()
        server.wait()
    assert 0 == result.exit_code, output
    assert "SIGNALLED" not in output
    assert marker not in output
    assert "pytest" not in output
    assert alive, "the step killed a host process"
