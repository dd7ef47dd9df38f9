"""A server's or worker's docker containers carry its own owner label (from
its cgroup prefix, the same across restarts), so the restarted one removes
what its crashed self kept for a build, and nobody else's."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from sauci.core.config import Settings
from sauci.core.models import Step
from sauci.sandbox.policy import server_sandboxes
from sauci.testing.sandbox import MemoryLog

PREFIX = "sauci-srvtest1-"


def test_a_restarted_server_sweeps_the_containers_its_crashed_self_kept(
    dockerd: str, busybox_image: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", dockerd)
    settings = Settings(data_dir=tmp_path / "data", sandbox="local", allowed_sandboxes=("docker",))
    crashed = server_sandboxes(settings, cgroup_prefix=PREFIX).load("docker")
    assert "sauci-srvtest1" == crashed.owner  # type: ignore[attr-defined]
    result = crashed.run(
        Step(name="t", run="true", shell=("sh", "-c"), image=busybox_image),
        tmp_path,
        MemoryLog(),
        env={"PATH": "/bin"},
        cancel=threading.Event(),
        label="b12-t",
    )
    assert 0 == result.exit_code
    api = crashed.api  # type: ignore[attr-defined]
    other = api.create_container(busybox_image, ["true"], labels={"sauci.owner": "someone"})
    try:
        # Never ended nor closed: the server died here. Its restart:
        swept = server_sandboxes(settings, cgroup_prefix=PREFIX).sweep_containers()
        assert 1 == len(swept) and swept[0].startswith("sauci-srvtest1-b12-t-")
        left = api.containers(all=True, filters={"label": "sauci.owner"})
        assert [other["Id"]] == [c["Id"] for c in left]
    finally:
        api.remove_container(other["Id"], force=True)
        crashed.close()


def test_no_docker_in_the_policy_sweeps_nothing(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", sandbox="local")
    assert [] == server_sandboxes(settings, cgroup_prefix=PREFIX).sweep_containers()
