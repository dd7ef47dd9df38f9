"""Matrix entries under the namespace sandbox: each copy is handed to the step's
uid, its reports are collected from it, and a step cannot use its copy to reach
the build's workspace or a sibling's."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from sauci import Status, run_pipeline
from sauci.core.config import Settings
from sauci.core.pipeline import parse_pipeline
from sauci.sandbox.namespace import NamespaceSandbox
from sauci.storage.memory import MemoryStore

pytestmark = pytest.mark.usefixtures("require_bwrap")

PIPELINE = """\
steps:
  install:
    run: mkdir -p .venv && echo ok > .venv/marker
  test:
    matrix: {n: ['1', '2', '3']}
    run: |
      test "$(cat .venv/marker)" = ok
      test "$PWD" = "$SAUCI_WORKSPACE"
      others=$(ls -A .. | grep -vx "$(basename "$PWD")" || true)
      [ -z "$others" ] || { echo "sees other workspaces: $others"; exit 1; }
      mkdir -p reports
      i=0; rows=''
      while [ $i -lt ${{ matrix.n }} ]; do i=$((i+1)); rows="$rows<testcase name='c$i'/>"; done
      echo "<testsuite name='s'>$rows</testsuite>" > reports/junit.xml
    junit: reports/junit.xml
"""


@pytest.fixture
def area() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="sauci-nsm-", dir="/tmp"))
    path.chmod(0o711)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="the namespace sandbox drops root to uid 1000")
def test_entries_run_in_their_own_copies_under_the_namespace_sandbox(area, tmp_path):
    workspace = area / "ws"
    workspace.mkdir()
    store = MemoryStore()
    sandbox = NamespaceSandbox(grace=0.5, cgroup_prefix=f"sauci-nsm{os.getpid()}-")
    outcome = run_pipeline(
        parse_pipeline(PIPELINE),
        workspace,
        store=store,
        sandbox=sandbox,
        settings=Settings(data_dir=tmp_path / "data", grace=1.0),
        secrets={},
    )
    assert outcome.status is Status.PASSED, [(s.name, s.reason) for s in outcome.steps]
    counts: dict[str, int] = {}
    for step, _ in store.list_test_results(outcome.build.id):
        counts[step] = counts.get(step, 0) + 1
    assert {"test (1)": 1, "test (2)": 2, "test (3)": 3} == counts
    assert ["ws"] == sorted(p.name for p in area.iterdir())  # the copies are gone
