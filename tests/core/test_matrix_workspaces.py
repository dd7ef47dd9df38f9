"""Each matrix entry runs in its own copy of the workspace, so reports never mix."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sauci import Status, run_pipeline
from sauci.core.config import Settings
from sauci.core.entry_workspaces import EntryWorkspaces, copy_tree
from sauci.core.pipeline import parse_pipeline
from sauci.exceptions import SandboxError
from sauci.storage.memory import MemoryStore

# Three entries, each writing reports/junit.xml with a different number of
# cases (1, 2 and 3), at slightly different times: in one shared workspace
# the glob of each entry would find whichever file was there last.
_PIPELINE = """\
steps:
  setup:
    run: echo installed > setup.txt
  test:
    matrix:
      n: ['1', '2', '3']
    needs: [setup]
    run: |
      test "$(cat setup.txt)" = installed
      mkdir -p reports
      sleep 0.0${{ matrix.n }}
      i=0; rows=''
      while [ $i -lt ${{ matrix.n }} ]; do
        i=$((i+1)); rows="$rows<testcase classname='m${{ matrix.n }}' name='c$i'/>"
      done
      echo "<testsuite name='s'>$rows</testsuite>" > reports/junit.xml
      echo ${{ matrix.n }} > mine.txt
    junit: reports/junit.xml
    artifacts: mine.txt
  after:
    needs: [test]
    run: test ! -e reports/junit.xml && test ! -e mine.txt && test -e setup.txt
"""


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", grace=1.0)


def _run(tmp_path: Path, settings: Settings, round_: int):
    workspace = tmp_path / f"ws{round_}"
    workspace.mkdir()
    (workspace / "README").write_text("checkout\n")
    store = MemoryStore()
    outcome = run_pipeline(
        parse_pipeline(_PIPELINE), workspace, settings=settings, store=store, secrets={}
    )
    return workspace, store, outcome


def test_each_entry_reports_its_own_cases_every_time(tmp_path, settings):
    """Totals are exact (1+2+3) and per entry, over repeated runs."""
    for round_ in range(4):
        workspace, store, outcome = _run(tmp_path, settings, round_)
        assert outcome.status is Status.PASSED, [(s.name, s.reason) for s in outcome.steps]
        results = store.list_test_results(outcome.build.id)
        per_step: dict[str, int] = {}
        for step, case in results:
            per_step[step] = per_step.get(step, 0) + 1
            assert case.classname == "m" + step[-2]  # "test (2)" -> only m2 cases
        assert {"test (1)": 1, "test (2)": 2, "test (3)": 3} == per_step
        arts = store.list_artifacts(outcome.build.id)
        assert sorted((s, a.path, a.size) for s, a in arts) == [
            ("test (1)", "mine.txt", 2),
            ("test (2)", "mine.txt", 2),
            ("test (3)", "mine.txt", 2),
        ]
        # The build's workspace holds what plain steps wrote, no entry's files;
        # the entries' copies are gone.
        assert sorted(p.name for p in workspace.iterdir()) == ["README", "setup.txt"]
        assert sorted(p.name for p in workspace.parent.iterdir() if ".entry-" in p.name) == []


def test_entry_sees_the_workspace_as_its_needs_left_it(tmp_path):
    ws = tmp_path / "ws"
    (ws / ".venv" / "bin").mkdir(parents=True)
    (ws / ".venv" / "bin" / "tool").write_text("#!/bin/sh\n")
    (ws / ".venv" / "bin" / "tool").chmod(0o755)
    (ws / "link").symlink_to("/etc/passwd")
    os.link(ws / ".venv" / "bin" / "tool", ws / "hard")
    entries = EntryWorkspaces(ws, 7)
    copy = entries.make("test (py 3.12)")
    assert copy.parent == ws.parent and copy != ws
    assert (copy / ".venv" / "bin" / "tool").stat().st_mode & 0o111
    assert os.readlink(copy / "link") == "/etc/passwd"  # copied as a link, not followed
    # A hard link inside the checkout stays inside the copy: writing the
    # copy never changes the build's workspace.
    (copy / "hard").write_text("changed")
    assert (ws / ".venv" / "bin" / "tool").read_text() == "#!/bin/sh\n"
    # Read-only directories a step left are removed too.
    (copy / "ro").mkdir()
    (copy / "ro" / "f").write_text("x")
    (copy / "ro").chmod(0o500)
    other = entries.make("test (py 3.13)")
    entries.release(other)  # one entry's reports are collected: its copy goes
    assert not other.exists() and copy.exists()
    entries.close()
    assert not copy.exists()
    assert (ws / "hard").exists()


def test_a_copy_that_cannot_be_made_is_a_sandbox_error(tmp_path):
    entries = EntryWorkspaces(tmp_path / "missing" / "ws", 1)
    with pytest.raises(SandboxError, match="cannot make a workspace"):
        entries.make("t (a)")


def test_copy_tree_without_gnu_cp(tmp_path, monkeypatch):
    """The shutil path (other systems) copies links as links too."""
    monkeypatch.setattr("sauci.core.entry_workspaces.sys.platform", "darwin")
    src, dest = tmp_path / "s", tmp_path / "d"
    (src / "a").mkdir(parents=True)
    (src / "a" / "f").write_text("1")
    (src / "l").symlink_to("/")
    dest.mkdir()
    copy_tree(src, dest)
    assert (dest / "a" / "f").read_text() == "1"
    assert os.readlink(dest / "l") == "/"


def test_plain_steps_keep_the_build_workspace(tmp_path, settings):
    """No copy for a step without a matrix: the fast path is unchanged."""
    ws = tmp_path / "ws"
    ws.mkdir()
    pipeline = parse_pipeline("steps:\n  a:\n    run: echo $PWD > where\n")
    outcome = run_pipeline(pipeline, ws, settings=settings, secrets={})
    assert outcome.status is Status.PASSED
    assert Path((ws / "where").read_text().strip()).resolve() == ws.resolve()
