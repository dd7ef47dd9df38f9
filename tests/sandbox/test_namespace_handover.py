"""The workspace handed to the step's host uid once per build (sauci.sandbox._handover):
a build's later steps do not walk it again, unless SauCI wrote into it
between steps (a cache restore, into the workspace or HOME; artifacts given to
a step; a step of the local sandbox, as SauCI's own uid), and a step's
symlinks and hard links never make the hand-over give away a file outside."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from sauci import Settings, run_pipeline
from sauci.core.models import Pipeline, Step
from sauci.core.step_parts import Cache
from sauci.sandbox import _handover
from sauci.sandbox._handover import (
    forget_hand_over,
    hand_over,
    hand_over_tools,
    workspace_written,
)
from sauci.sandbox.namespace import NamespaceSandbox

UID = 4243  # for the tests of the record alone: a uid nothing else uses


@pytest.fixture
def area() -> Iterator[Path]:
    """Where the step's unprivileged host uid can reach (not 0700 tmp_path)."""
    path = Path(tempfile.mkdtemp(prefix="sauci-nshand-", dir="/tmp"))
    path.chmod(0o711)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def walks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every directory walked by a hand-over, in order."""
    seen: list[str] = []
    walk = _handover.adopt_workspace

    def counted(path: Path, uid: int, gid: int) -> int:
        seen.append(str(path))
        return walk(path, uid, gid)

    monkeypatch.setattr(_handover, "adopt_workspace", counted)
    return seen


def root_only() -> None:
    if os.geteuid() != 0:
        pytest.skip("only root hands the workspace to another uid")


# -- the record alone (no sandbox): any uid will do, as root ------------------


def test_a_build_s_second_hand_over_does_not_walk(area: Path, walks: list[str]) -> None:
    root_only()
    ws = area / "ws"
    (ws / "src").mkdir(parents=True)
    (ws / "src" / "a.py").write_text("x")
    hand_over(ws, UID, UID, "1")
    hand_over(ws, UID, UID, "1")
    assert [str(ws)] == walks
    assert UID == (ws / "src" / "a.py").stat().st_uid


def test_written_new_build_other_uid_or_no_build_walk_again(area: Path, walks: list[str]) -> None:
    root_only()
    ws = area / "ws"
    ws.mkdir()
    hand_over(ws, UID, UID, "1")
    (ws / "restored").write_text("root's")  # SauCI writes between steps...
    workspace_written(ws)  # ...and says so
    hand_over(ws, UID, UID, "1")
    assert UID == (ws / "restored").stat().st_uid
    (ws / "checkout").write_text("root's")  # the slot's next build
    hand_over(ws, UID, UID, "2")
    assert UID == (ws / "checkout").stat().st_uid
    hand_over(ws, UID + 1, UID + 1, "2")  # a step of another sandbox, another uid
    hand_over(ws, UID, UID, "2")
    hand_over(ws, UID, UID, None)  # a sandbox run outside an executor: always
    forget_hand_over(ws)  # the build ended
    hand_over(ws, UID, UID, "2")
    assert 7 == len(walks)


def test_a_write_during_the_walk_is_not_forgotten(
    area: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root_only()
    ws = area / "ws"
    ws.mkdir()
    walk = _handover.adopt_workspace
    calls: list[int] = []

    def racing(path: Path, uid: int, gid: int) -> int:
        calls.append(1)
        changed = walk(path, uid, gid)
        if len(calls) == 1:  # a restore for a parallel step ends after the walk passed
            (ws / "late").write_text("root's")
            workspace_written(ws)
        return changed

    monkeypatch.setattr(_handover, "adopt_workspace", racing)
    hand_over(ws, UID, UID, "1")
    hand_over(ws, UID, UID, "1")
    assert 2 == len(calls)
    assert UID == (ws / "late").stat().st_uid


def test_tools_dir_walked_again_when_sauci_made_a_directory_in_it(
    area: Path, walks: list[str]
) -> None:
    root_only()
    tools = area / "tools"
    (tools / "pip").mkdir(parents=True)
    hand_over_tools(tools, UID, UID)
    hand_over_tools(tools, UID, UID)  # another step, another build: not walked
    assert 1 == len(walks)
    shutil.rmtree(tools / "pip")  # an eviction emptied it, cache_env makes it again
    (tools / "pip").mkdir()
    hand_over_tools(tools, UID, UID)
    assert 2 == len(walks)
    assert UID == (tools / "pip").stat().st_uid
    forget_hand_over(tools)


# -- builds under the namespace sandbox, as root -------------------------------


def _run(area: Path, steps: list[Step], name: str = "ws"):
    ws = area / name
    ws.mkdir(exist_ok=True)
    ws.chmod(0o711)
    sandbox = NamespaceSandbox(grace=0.5, cgroup_prefix=f"sauci-nsh{os.getpid()}-")
    try:
        outcome = run_pipeline(
            Pipeline(steps=steps),
            ws,
            sandbox=sandbox,
            settings=Settings(data_dir=area / "data"),
            repo="demo",
            ref="refs/heads/main",
        )
    finally:
        sandbox.close()
    logs = {s.name: Path(s.log_path or "").read_text() for s in outcome.steps}
    return ws, {s.name: s.status.value for s in outcome.steps}, logs


def test_second_step_of_a_build_does_not_walk(area: Path, walks: list[str]) -> None:
    root_only()
    steps = [
        Step(name="install", run="mkdir -p venv/lib && touch venv/lib/a venv/lib/b"),
        Step(name="test", run="touch venv/lib/c && ls venv/lib", needs=("install",)),
    ]
    ws, status, logs = _run(area, steps)
    assert {"install": "passed", "test": "passed"} == status, logs
    home = str(ws.with_name("ws-scratch") / "home")
    tools = [w for w in walks if w.endswith("/tools")]
    assert [str(ws), home] == [w for w in walks if w in (str(ws), home)]
    assert len(tools) <= 1  # once per process at most


def test_a_cache_restored_between_steps_is_the_step_s(area: Path, walks: list[str]) -> None:
    root_only()
    cache = Cache(paths=("out", "~/.thing"), key="k-1")
    make = "mkdir -p out ~/.thing && echo one > out/marker && echo one > ~/.thing/m"
    first = [Step(name="first", run="true"), Step(name="make", run=make, cache=cache)]
    _, status, logs = _run(area, first, "ws1")
    assert {"first": "passed", "make": "passed"} == status, logs
    # The next build: its first step walks, then the cache is restored (as
    # root, unpacked) for the second, which must be able to write into it.
    use = "echo two >> out/marker && echo two >> ~/.thing/m && touch out/new ~/.thing/new"
    second = [
        Step(name="first", run="true"),
        Step(name="use", run=use, cache=cache, needs=("first",)),
    ]
    ws, status, logs = _run(area, second, "ws2")
    assert {"first": "passed", "use": "passed"} == status, logs
    assert "cache: hit" in logs["use"]
    assert "one\ntwo\n" == (ws / "out" / "marker").read_text()
    assert 2 == walks.count(str(ws))


def test_artifacts_given_between_steps_are_the_step_s(area: Path) -> None:
    root_only()
    steps = [
        Step(name="build", run="mkdir -p dist && echo wheel > dist/a.whl", artifacts=("dist/*",)),
        Step(
            name="use",
            run="echo more >> .sauci-artifacts/use/build/dist/a.whl && "
            "touch .sauci-artifacts/use/build/dist/new",
            needs=("build",),
            download_artifacts=True,
        ),
    ]
    ws, status, logs = _run(area, steps)
    assert {"build": "passed", "use": "passed"} == status, logs
    assert "wheel\nmore\n" == (ws / ".sauci-artifacts/use/build/dist/a.whl").read_text()


def test_a_local_step_between_namespace_steps(area: Path) -> None:
    root_only()
    steps = [
        Step(name="one", run="mkdir own && touch own/a"),
        Step(name="local", run="mkdir by-root && touch by-root/b", sandbox="local", needs=("one",)),
        Step(name="three", run="touch by-root/c own/d", needs=("local",)),
    ]
    _, status, logs = _run(area, steps)
    assert {"one": "passed", "local": "passed", "three": "passed"} == status, logs


def test_planted_links_never_give_a_file_away(area: Path) -> None:
    """A step plants a symlink to a root file outside, and tries a hard link
    to it; SauCI then writes (artifacts), so the next step's hand-over walks:
    the file outside stays root's, and so does a root file that is hard-linked
    into the workspace (as a linked cache restore's)."""
    root_only()
    outside = area / "outside.txt"
    outside.write_text("root's")
    outside.chmod(0o644)
    plant = f"ln -s {outside} evil && (ln {outside} hard 2>/dev/null || true) && mkdir -p dist && touch dist/x"
    steps = [
        Step(name="plant", run=plant, artifacts=("dist/*",)),
        Step(
            name="after",
            run="test -L evil",
            needs=("plant",),
            download_artifacts=True,
        ),
    ]
    ws = area / "ws"
    ws.mkdir()
    os.link(outside, ws / "linked")  # a linked restore's file: nlink 2, SauCI's
    _, status, logs = _run(area, steps)
    assert {"plant": "passed", "after": "passed"} == status, logs
    st = outside.stat()
    assert (0, 0, 0o644) == (st.st_uid, st.st_gid, st.st_mode & 0o777)
    assert "root's" == outside.read_text()
    assert 0 == os.lstat(ws / "linked").st_uid  # a hard link stays SauCI's


def test_a_pushed_build_id_does_not_skip_the_next_build_s_walk(area: Path) -> None:
    """The record is keyed on SAUCI_BUILD_ID, which a pipeline's env: may set:
    the same value in every build still walks at each build's first step
    (the executor forgets the record when a build ends), so what SauCI wrote
    as root between two builds (the next checkout) is the step's."""
    root_only()
    steps = [Step(name="write", run="echo more >> checked-out", env={"SAUCI_BUILD_ID": "1"})]
    for round_ in range(2):
        ws = area / "ws"
        ws.mkdir(exist_ok=True)
        (ws / "checked-out").write_text("as root\n")  # a checkout, as SauCI's root
        os.chown(ws / "checked-out", 0, 0)
        _, status, logs = _run(area, steps)
        assert {"write": "passed"} == status, (round_, logs)
