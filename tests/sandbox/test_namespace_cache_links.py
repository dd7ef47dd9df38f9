"""A ``skip_on_hit`` cache hit under the namespace sandbox started by root is
restored as hard links to the entry's unpacked copy, and a miss keeps the
step's files as that copy: the steps after it read the files, may replace
or delete them, and cannot write into them, so the cache stays as it was
saved (hostile: a step that tries)."""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from sauci import Settings, run_pipeline
from sauci.core.cache_store import CacheStore
from sauci.core.pipeline import parse_pipeline
from sauci.sandbox.namespace import NamespaceSandbox

pytestmark = [
    pytest.mark.usefixtures("require_bwrap"),
    pytest.mark.skipif(os.geteuid() != 0, reason="steps run as another uid only under root"),
]

PIPELINE = """\
steps:
  install:
    run: |
      echo "install ran"
      mkdir -p out/lib
      echo saved > out/marker
      echo saved > out/lib/other
      ln -s /usr/bin/env out/env
    cache:
      paths: [out]
      key: out-1
      skip_on_hit: true
  test:
    needs: [install]
    run: |
      cat out/marker
      echo hostile >> out/marker && echo "appended" || echo "append refused"
      : > out/lib/other && echo "truncated" || echo "truncate refused"
      chmod u+w out/marker && echo "chmodded" || echo "chmod refused"
      rm out/lib/other && echo replaced > out/lib/other && echo "replaced $(cat out/lib/other)"
      echo new > out/new
"""


def _branch_dir(area: Path) -> Path:
    """Where the caches of branch main of repository demo live in the data dir."""
    return CacheStore(area / "data" / "cache" / "steps").tools_dir("demo", "main").parent


@pytest.fixture
def area() -> Iterator[Path]:
    """Where the step's unprivileged host uid can reach (not 0700 tmp_path)."""
    path = Path(tempfile.mkdtemp(prefix="sauci-nslink-", dir="/tmp"))
    path.chmod(0o711)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _build(area: Path, n: int):
    ws = area / f"ws{n}"
    ws.mkdir()
    ws.chmod(0o711)
    sandbox = NamespaceSandbox(grace=0.5, cgroup_prefix=f"sauci-nsl{os.getpid()}-")
    assert "foreign_uid" in sandbox.capabilities
    outcome = run_pipeline(
        parse_pipeline(PIPELINE),
        ws,
        sandbox=sandbox,
        settings=Settings(data_dir=area / "data"),
        repo="demo",
        ref="refs/heads/main",
    )
    logs = [Path(s.log_path or "").read_text() for s in outcome.steps]
    for s in outcome.steps:
        Path(s.log_path or "").unlink()
    return outcome.steps, logs, ws


def _assert_cache_intact(area: Path) -> None:
    keys = _branch_dir(area) / "keys"
    tree = keys / "out-1.tree" / "ws" / "out"
    assert "saved\n" == (tree / "marker").read_text()
    assert "saved\n" == (tree / "lib" / "other").read_text()
    assert not (tree / "new").exists()
    assert os.readlink(tree / "env") == "/usr/bin/env"
    with tarfile.open(keys / "out-1.tar") as tar:
        member = tar.extractfile("ws/out/marker")
        assert member is not None and b"saved\n" == member.read()
        info = tar.getmember("ws/out/marker")
        assert (0, 0, 0o644) == (info.uid, info.gid, info.mode)  # writable again once unpacked
        assert tar.getmember("ws/out/env").issym()
        assert "1" == tar.pax_headers.get("SAUCI.packed")
    assert not [p for p in keys.iterdir() if p.name.startswith(".")]  # no staging left


def _ids(path: Path) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_dev, st.st_ino


def _assert_refused(log: str) -> None:
    assert "append refused" in log, log
    assert "truncate refused" in log
    assert "chmod refused" in log
    assert "replaced replaced" in log  # remove and write anew: allowed


def test_a_step_cannot_write_into_a_linked_restore_and_the_cache_stays_intact(area: Path):
    # A miss: the install's files are kept as the entry's unpacked copy as
    # they are (hard links), so the test step after it already sees them as
    # a hit would, read-only; the archive is written from that copy.
    (install, test), logs, ws = _build(area, 1)
    assert ("passed", "passed") == (install.status, test.status), logs
    assert "install ran" in logs[0] and "its archive is written after the step" in logs[0]
    _assert_refused(logs[1])
    assert "saved\n" == (ws / "out" / "marker").read_text()
    _assert_cache_intact(area)
    # Once the build ended, a spare linked copy waits beside the entry.
    ready = _branch_dir(area) / "keys" / "out-1.ready"
    spare = os.stat(ready / "ws" / "out" / "lib")

    (install, test), logs, ws = _build(area, 2)
    assert ("passed", "passed") == (install.status, test.status), logs
    assert "linked in" in logs[0] and "run is skipped" in logs[0], logs[0]
    assert "install ran" not in logs[0]
    # The restore took that spare whole (its directory, not a new one) ...
    assert (spare.st_dev, spare.st_ino) == _ids(ws / "out" / "lib")
    _assert_refused(logs[1])
    assert "saved\n" == (ws / "out" / "marker").read_text()
    _assert_cache_intact(area)
    # ... and a new one was made after the build, untouched by its steps.
    assert _ids(ready / "ws" / "out" / "lib") != (spare.st_dev, spare.st_ino)
    assert "saved\n" == (ready / "ws" / "out" / "lib" / "other").read_text()
    assert not (ready / "ws" / "out" / "new").exists()

    (install, test), logs, ws = _build(area, 3)
    assert ("passed", "passed") == (install.status, test.status), logs
    assert logs[1].startswith("saved\n"), logs[1]


DANGLING = """\
steps:
  install:
    run: |
      echo "install ran"
      mkdir -p out
      echo saved >> out/marker
      ln -sf "$PWD/dep.txt" out/link
    cache:
      paths: [out]
      key: out-1
      skip_on_hit: true
"""


def test_a_linked_restore_with_a_link_pointing_nowhere_is_unpacked_before_the_step_runs(
    area: Path,
):
    """The link names the first build's workspace, which the second one's
    sandbox hides: the step runs, so the linked copy is swapped for an
    unpacked one it may write into, and the cache's copy stays as saved
    (until the step's result is saved again under the key)."""
    tree = _branch_dir(area) / "keys" / "out-1.tree"
    kept = area / "kept-marker"
    for n in (1, 2):
        if n == 2:  # a second name for the cached file, to read it after the build
            os.link(tree / "ws" / "out" / "marker", kept)
        ws = area / f"ws{n}"
        ws.mkdir()
        ws.chmod(0o711)
        (ws / "dep.txt").write_text("dep\n")
        outcome = run_pipeline(
            parse_pipeline(DANGLING),
            ws,
            sandbox=NamespaceSandbox(grace=0.5, cgroup_prefix=f"sauci-nsl{os.getpid()}-"),
            settings=Settings(data_dir=area / "data"),
            repo="demo",
            ref="refs/heads/main",
        )
        (step,) = outcome.steps
        log = Path(step.log_path or "").read_text()
        Path(step.log_path or "").unlink()
        assert "passed" == step.status, log
    assert "points nowhere; running the step" in log, log
    assert "install ran" in log
    assert "saved\nsaved\n" == (ws / "out" / "marker").read_text()  # appended: its own copy
    assert "saved\n" == kept.read_text()
    # Saved again under the same key: the archive and its new unpacked copy agree.
    assert "saved\nsaved\n" == (tree / "ws" / "out" / "marker").read_text()
