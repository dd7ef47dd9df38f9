"""The docker sandbox and step caches: the cache round trip through two
builds, and the repository's pip/uv download cache written from inside the
container (bound at its host path, handed to the step's uid)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sauci import Settings, run_pipeline
from sauci.core.cache_store import CacheStore
from sauci.core.pipeline import parse_pipeline

OWNER = "sauci-test-cache"
PIPELINE = """\
steps:
  build:
    shell: [sh, -c]
    run: |
      if [ -f out/marker ]; then echo "found $(cat out/marker)"; else mkdir -p out; echo made > out/marker; fi
      echo "uid=$(id -u)" > "$PIP_CACHE_DIR/probe"
    cache:
      paths: [out]
      key: out-1
"""


def _branch_dir(area: Path) -> Path:
    """Where the caches of branch main of repository demo live in the data dir."""
    return CacheStore(area / "data" / "cache" / "steps").tools_dir("demo", "main").parent


@pytest.fixture
def sandbox(dockerd: str, busybox_image: str) -> Iterator[Any]:
    from sauci.sandbox.docker import DockerSandbox

    sandbox = DockerSandbox(base_url=dockerd, image=busybox_image, owner=OWNER, grace=0.5)
    yield sandbox
    sandbox.sweep(OWNER)
    sandbox.close()


@pytest.fixture
def area() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="sauci-dkcache-", dir="/tmp"))
    path.chmod(0o711)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_cache_round_trip_and_download_cache_in_a_container(sandbox: Any, area: Path):
    reasons = []
    for n in (1, 2):
        ws = area / f"ws{n}"
        ws.mkdir()
        outcome = run_pipeline(
            parse_pipeline(PIPELINE),
            ws,
            sandbox=sandbox,
            settings=Settings(data_dir=area / "data"),
            repo="demo",
            ref="refs/heads/main",
        )
        step = outcome.steps[0]
        log = Path(step.log_path or "").read_text()
        assert "passed" == step.status, log
        reasons.append(step.reason or "")
    assert "found made" in log
    assert reasons[0].startswith("cache miss out-1") and reasons[1].startswith("cache hit out-1")
    probe = _branch_dir(area) / "tools" / "pip" / "probe"
    expected_uid = sandbox.user[0] if os.geteuid() == 0 else os.geteuid()
    assert f"uid={expected_uid}\n" == probe.read_text()
