"""Step caches and the pip/uv download cache under the namespace sandbox:
the server restores and saves in the workspace around the step, and the
repository's download cache is bound read-write (and only it)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from sauci import Settings, run_pipeline
from sauci.core.cache_store import CacheStore
from sauci.core.pipeline import parse_pipeline
from sauci.sandbox.namespace import NamespaceSandbox

pytestmark = pytest.mark.usefixtures("require_bwrap")

PIPELINE = """\
steps:
  build:
    run: |
      if [ -f out/marker ]; then echo "found $(cat out/marker)"; else mkdir -p out; echo made > out/marker; fi
      echo "uid=$(id -u)" > "$PIP_CACHE_DIR/probe"
      echo written
    cache:
      paths: [out]
      key: out-1
"""


def _branch_dir(area: Path) -> Path:
    """Where the caches of branch main of repository demo live in the data dir."""
    return CacheStore(area / "data" / "cache" / "steps").tools_dir("demo", "main").parent


@pytest.fixture
def area() -> Iterator[Path]:
    """Where the step's unprivileged host uid can reach (not 0700 tmp_path)."""
    path = Path(tempfile.mkdtemp(prefix="sauci-nscache-", dir="/tmp"))
    path.chmod(0o711)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _build(area: Path, n: int, text: str = PIPELINE):
    ws = area / f"ws{n}"
    ws.mkdir()
    ws.chmod(0o711)
    sandbox = NamespaceSandbox(grace=0.5, cgroup_prefix=f"sauci-nsc{os.getpid()}-")
    outcome = run_pipeline(
        parse_pipeline(text),
        ws,
        sandbox=sandbox,
        settings=Settings(data_dir=area / "data"),
        repo="demo",
        ref="refs/heads/main",
    )
    step = outcome.steps[0]
    return step, Path(step.log_path or "").read_text()


def test_cache_round_trip_and_a_writable_download_cache(area: Path):
    first, log = _build(area, 1)
    assert "passed" == first.status, log
    assert first.reason is not None and first.reason.startswith("cache miss out-1")
    probe = _branch_dir(area) / "tools" / "pip" / "probe"
    assert "uid=1000\n" == probe.read_text()  # written from inside the sandbox

    second, log = _build(area, 2)
    assert "passed" == second.status, log
    assert "found made" in log
    assert second.reason is not None and second.reason.startswith("cache hit out-1")


def test_a_pipeline_cannot_have_another_directory_bound(area: Path):
    target = area / "target"
    target.mkdir()
    text = PIPELINE.replace("steps:", f"env:\n  SAUCI_CACHE_DIR: {target}\nsteps:").replace(
        'echo "uid=$(id -u)" > "$PIP_CACHE_DIR/probe"',
        f"echo x > {target}/owned || true",
    )
    step, log = _build(area, 1, text)
    assert "passed" == step.status, log
    assert not (target / "owned").exists()


HOME_PIPELINE = """\
steps:
  build:
    run: |
      if [ -f ~/.cache/tool/state ]; then
        echo "home had $(cat ~/.cache/tool/state)"; echo again >> ~/.cache/tool/state
      else
        mkdir -p ~/.cache/tool; echo first > ~/.cache/tool/state
      fi
    cache:
      paths: [~/.cache/tool]
      key: home-1
"""


def test_home_paths_are_cached_in_the_builds_own_home(area: Path):
    """`~/` paths live in the build's own HOME (not the workspace, not the
    host's): saved from it, restored into the next build's, and the step may
    change what was restored (it is given to the step's uid)."""
    first, log = _build(area, 1, HOME_PIPELINE)
    assert "passed" == first.status, log
    assert first.reason is not None and first.reason.startswith("cache miss home-1"), log
    assert "skipped" not in log

    second, log = _build(area, 2, HOME_PIPELINE)
    assert "passed" == second.status, log  # `echo again >>` wrote into what was restored
    assert "home had first" in log
    assert second.reason is not None and second.reason.startswith("cache hit home-1")
    assert not (Path.home() / ".cache" / "tool").exists()  # the host's HOME was never used
