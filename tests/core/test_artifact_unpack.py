"""Step.artifacts_from: earlier steps' kept artifacts put into a step's
workspace at their own paths, never through a link a step planted."""

from __future__ import annotations

import os
from pathlib import Path

from sauci import Pipeline, Status, Step, run_pipeline
from sauci.core.artifact_unpack import unpack_into
from sauci.core.config import Settings


def test_later_sources_replace_earlier_files(tmp_path: Path) -> None:
    a, b, ws = tmp_path / "a", tmp_path / "b", tmp_path / "ws"
    for d in (a / "out", b / "out", ws):
        d.mkdir(parents=True)
    (a / "out" / "x.txt").write_text("a")
    (a / "out" / "only-a.txt").write_text("a")
    (b / "out" / "x.txt").write_text("b")
    assert unpack_into(ws, [a, b, tmp_path / "missing"]) == 3
    assert (ws / "out" / "x.txt").read_text() == "b"
    assert (ws / "out" / "only-a.txt").read_text() == "a"


def test_links_in_the_workspace_are_replaced_never_followed(tmp_path: Path) -> None:
    """A step that shares the workspace may plant links where artifacts go:
    the directory link and the file link are replaced, their targets untouched."""
    src, ws, outside = tmp_path / "src", tmp_path / "ws", tmp_path / "outside"
    (src / "out").mkdir(parents=True)
    (src / "out" / "x.txt").write_text("artifact")
    (src / "top.txt").write_text("artifact")
    ws.mkdir()
    outside.mkdir()
    (outside / "top.txt").write_text("secret")
    os.symlink(outside, ws / "out")
    os.symlink(outside / "top.txt", ws / "top.txt")
    unpack_into(ws, [src])
    assert not (ws / "out").is_symlink() and (ws / "out" / "x.txt").read_text() == "artifact"
    assert not (ws / "top.txt").is_symlink() and (ws / "top.txt").read_text() == "artifact"
    assert sorted(p.name for p in outside.iterdir()) == ["top.txt"]
    assert (outside / "top.txt").read_text() == "secret"


def test_a_step_gets_the_artifacts_of_matrix_entries_it_needs(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    steps = [
        Step(
            name=f"make {i}",
            run=f"mkdir -p out && echo {i} > out/{i}.txt",
            needs=[],
            matrix={"I": str(i)},
            artifacts=["out/**"],
        )
        for i in (1, 2)
    ] + [
        Step(
            name="use",
            run="cat out/1.txt out/2.txt",
            needs=["make 1", "make 2"],
            artifacts_from=["make 1", "make 2"],
            own_workspace=True,
        ),
        Step(name="unrelated", run="test ! -e out", needs=["make 1"], artifacts_from=["make 2"]),
    ]
    settings = Settings(data_dir=tmp_path / "data", grace=1.0)
    outcome = run_pipeline(Pipeline(steps=steps), ws, settings=settings, secrets={})
    assert [s.status for s in outcome.steps] == [Status.PASSED] * 4
    assert Path(outcome.step("use").log_path).read_text().split() == ["1", "2"]
    assert not (ws / "out").exists()  # "use" ran in its own copy
