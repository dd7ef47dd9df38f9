"""Which directory a sandbox binds read-write for pip's and uv's download
cache: only a real directory SauCI named, never a link, ``/`` or someone
else's; the docker sandbox mounts it at its host path beside the workspace."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from sauci.core.models import Step
from sauci.sandbox._cache_bind import cache_bind
from sauci.sandbox._docker_step import step_binds
from sauci.sandbox._steps import Job
from sauci.testing.sandbox import MemoryLog


def test_a_real_directory_is_bound(tmp_path: Path):
    assert str(tmp_path) == cache_bind({"SAUCI_CACHE_DIR": str(tmp_path)})


def test_links_root_relative_and_missing_paths_are_not(tmp_path: Path):
    os.symlink("/etc", tmp_path / "link")
    for value in (str(tmp_path / "link"), "/", "relative", str(tmp_path / "missing"), ""):
        assert cache_bind({"SAUCI_CACHE_DIR": value}) is None, value
    assert cache_bind({}) is None


def test_a_directory_of_another_owner_is_not(tmp_path: Path):
    other = tmp_path / "other"
    other.mkdir()
    if os.geteuid() == 0:
        os.chown(other, 12345, 12345)
        assert cache_bind({"SAUCI_CACHE_DIR": str(other)}) is None
        assert str(other) == cache_bind({"SAUCI_CACHE_DIR": str(other)}, (12345,))


def test_docker_mounts_it_at_its_host_path(tmp_path: Path):
    tools = tmp_path / "tools"
    tools.mkdir()
    job = Job(
        Step(name="s", run="true"),
        tmp_path,
        tmp_path,
        MemoryLog(),
        {"SAUCI_CACHE_DIR": str(tools)},
        threading.Event(),
        "label",
        time.monotonic(),
    )
    user = (os.geteuid(), os.getegid())
    expected = {
        str(tmp_path): {"bind": "/workspace", "mode": "rw"},
        str(tools): {"bind": str(tools), "mode": "rw"},
    }
    assert expected == step_binds(job, "/workspace", user)
    plain = Job(
        *[getattr(job, f) for f in ("step", "workspace", "cwd", "log")],
        {},
        *[getattr(job, f) for f in ("cancel", "label", "started")],
    )
    assert {str(tmp_path): {"bind": "/workspace", "mode": "rw"}} == step_binds(
        plain, "/workspace", user
    )
