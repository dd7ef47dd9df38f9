"""DockerSandbox against a private dockerd: the conformance suite with a busybox
image, bash in a Debian minbase image, labels, removal and sweep.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from sauci.core.models import Step
from sauci.testing.sandbox import MemoryLog, SandboxConformance

OWNER = "sauci-test"


@pytest.fixture
def docker_sandbox(dockerd: str, busybox_image: str):  # type: ignore[no-untyped-def]
    from sauci.sandbox.docker import DockerSandbox

    sandbox = DockerSandbox(base_url=dockerd, image=busybox_image, owner=OWNER, grace=0.5)
    yield sandbox
    sandbox.close()


class TestDockerSandbox(SandboxConformance):
    path = "/bin"
    extra_env_names = frozenset({"HOSTNAME", "HOME"})  # docker sets them; see docs/sandboxes.md
    slack = 15.0
    flood_bytes = 1_000_000_000

    @pytest.fixture
    def sandbox(self, docker_sandbox):  # type: ignore[no-untyped-def]
        return docker_sandbox


def _run(sandbox, script: str, workspace: Path, **step: object):  # type: ignore[no-untyped-def]
    log = MemoryLog()
    result = sandbox.run(
        Step(name="t", run=script, **step),  # type: ignore[arg-type]
        workspace,
        log,
        env={"PATH": "/usr/local/bin:/usr/bin:/bin"},
        cancel=threading.Event(),
        label="b7-docker-test",
    )
    return result, bytes(log.data)


def test_containers_are_removed_when_the_build_ends(docker_sandbox, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result, _ = _run(docker_sandbox, "true", tmp_path, shell=("sh", "-c"))
    assert 0 == result.exit_code
    kept = docker_sandbox.api.containers(all=True, filters={"label": f"sauci.owner={OWNER}"})
    assert ["7"] == [c["Labels"]["sauci.build"] for c in kept]
    docker_sandbox.build_ended(tmp_path)
    assert [] == docker_sandbox.api.containers(all=True, filters={"label": f"sauci.owner={OWNER}"})


def test_sweep_removes_leftovers(docker_sandbox, busybox_image: str) -> None:  # type: ignore[no-untyped-def]
    api = docker_sandbox.api
    made = api.create_container(
        busybox_image,
        command=["sleep", "1000"],
        labels={"sauci.owner": OWNER},
        name="sauci-test-left",
    )
    api.start(made["Id"])
    assert ["sauci-test-left"] == docker_sandbox.sweep(OWNER)
    assert [] == api.containers(all=True, filters={"label": f"sauci.owner={OWNER}"})


def test_step_runs_as_1000_with_workspace_writable(docker_sandbox, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "given.txt").write_text("x\n")
    result, output = _run(
        docker_sandbox, "id -u; id -g; pwd; echo y >> given.txt", tmp_path, shell=("sh", "-c")
    )
    assert (0, b"1000\n1000\n/workspace\n") == (result.exit_code, output)
    assert "x\ny\n" == (tmp_path / "given.txt").read_text()


@pytest.mark.slow
def test_debian_minbase_runs_bash(dockerd: str, debian_image: str, tmp_path: Path) -> None:
    from sauci.sandbox.docker import DockerSandbox

    sandbox = DockerSandbox(base_url=dockerd, owner=OWNER, grace=0.5)
    try:
        result, output = _run(
            sandbox,
            "echo $BASH_VERSION | cut -c1; set -o | grep -c pipefail",
            tmp_path,
            image=debian_image,
        )  # the default shell: bash -eo pipefail -c
    finally:
        sandbox.close()
    assert (0, b"5\n1\n") == (result.exit_code, output)


def test_missing_sdk_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from sauci.exceptions import MissingDependencyError
    from sauci.sandbox.docker import DockerSandbox

    monkeypatch.setitem(sys.modules, "docker", None)
    with pytest.raises(MissingDependencyError, match=r"sauci\[docker\]"):
        DockerSandbox(base_url="unix:///nonexistent.sock")
