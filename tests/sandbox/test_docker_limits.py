"""DockerSandbox names the limit a step ran into, from the container's cgroup
and docker's own state, against a private dockerd with the busybox image.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sauci.core.models import EndedBy, Limits, Step, StepResult
from sauci.sandbox._docker_limits import PidsWatch, container_pids_dir
from sauci.testing.sandbox import MemoryLog

OWNER = "sauci-test-limits"


@pytest.fixture
def sandbox(dockerd: str, busybox_image: str) -> Iterator[Any]:
    from sauci.sandbox.docker import DockerSandbox

    sandbox = DockerSandbox(base_url=dockerd, image=busybox_image, owner=OWNER, grace=0.5)
    yield sandbox
    sandbox.sweep(OWNER)
    sandbox.close()


def run(sandbox: Any, script: str, workspace: Path, **step: Any) -> StepResult:
    result: StepResult = sandbox.run(
        Step(name="t", run=script, shell=("sh", "-c"), **step),
        workspace,
        MemoryLog(keep=False),
        env={"PATH": "/bin"},
        cancel=threading.Event(),
        label="b3-limits",
    )
    return result


@pytest.mark.parametrize("attempt", range(5))
def test_fork_bomb_that_kills_its_shell_is_a_process_limit(
    sandbox: Any, tmp_path: Path, attempt: int
) -> None:
    # The shell dies of its first refused fork ("can't fork", exit 2), and the
    # container with its cgroup is gone within milliseconds: the reason must
    # come from the cgroup's counters all the same, every time (5 attempts).
    result = run(sandbox, "while :; do sleep 1000 & done", tmp_path, limits=Limits(processes=50))
    assert (2, EndedBy.PROCESS_LIMIT, "process limit of 50 reached") == (
        result.exit_code,
        result.ended_by,
        result.reason,
    )


def test_step_that_fails_below_the_limit_is_not_blamed_on_it(sandbox: Any, tmp_path: Path) -> None:
    result = run(sandbox, "sleep 0 & sleep 0 & wait; exit 2", tmp_path, limits=Limits(processes=50))
    assert (2, None, None) == (result.exit_code, result.ended_by, result.reason)


def test_cgroup_made_ahead_is_removed_with_the_container(sandbox: Any, tmp_path: Path) -> None:
    layout = sandbox._cgroup_layout()
    if layout is None or layout[0] != "cgroupfs":
        pytest.skip(f"the daemon's cgroups are {layout}, not made ahead by SauCI")
    root = Path("/sys/fs/cgroup") if layout[1] == "2" else Path("/sys/fs/cgroup/pids")
    before = {p.name for p in (root / "docker").iterdir() if p.is_dir()}
    result = run(sandbox, "true", tmp_path)
    assert 0 == result.exit_code
    sandbox.build_ended(tmp_path)
    assert before == {p.name for p in (root / "docker").iterdir() if p.is_dir()}


def test_memory_hog_says_out_of_memory_at_the_limit(sandbox: Any, tmp_path: Path) -> None:
    hog = "x=$(head -c 400000000 /dev/zero | tr '\\0' x); echo ${#x}"
    result = run(sandbox, hog, tmp_path, timeout=60, limits=Limits(memory=64 * 1024 * 1024))
    assert (EndedBy.OUT_OF_MEMORY, "out of memory at 64 MiB limit") == (
        result.ended_by,
        result.reason,
    )
    assert not result.ok


def test_pid_of_another_cgroup_is_not_taken_for_the_container() -> None:
    # A daemon on another host reports pids of its own machine; the local
    # process with that number (here: this test) is none of the container's.
    info = {"Id": "f" * 64, "State": {"Pid": os.getpid()}}
    assert container_pids_dir(info) is None


def test_watch_without_a_cgroup_reports_no_hit() -> None:
    watch = PidsWatch(None)
    watch.stop()
    assert (False, 0) == (watch.reached, watch.hits)
