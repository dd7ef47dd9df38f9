"""A step's ancestors' kept artifacts copied into its workspace (Step.download_artifacts):
only ancestors, copied not linked, never through a symlink a step left, and
from the earlier build for steps a rerun reused."""

from __future__ import annotations

import os

from sauci.core.artifact_inputs import INBOX, ancestors, give_artifacts
from sauci.core.models import Build, Pipeline, Step
from sauci.core.paths import artifact_dir

PIPELINE = Pipeline(
    steps=[
        Step(name="build", run="true", needs=()),
        Step(name="other", run="true", needs=()),
        Step(name="test", run="true", needs=("build",)),
        Step(name="use", run="true", needs=("test",), download_artifacts=True),
    ]
)


def keep(root, build_id: int, step: str, path: str, text: str) -> None:
    target = artifact_dir(root, "/srv/app.git", build_id, step) / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)


def test_ancestors_are_the_steps_needed_directly_or_not():
    assert ["build", "test"] == ancestors(PIPELINE, PIPELINE.step("use"))


def test_only_ancestors_artifacts_are_copied_as_copies(tmp_path):
    root, workspace = tmp_path / "artifacts", tmp_path / "ws"
    workspace.mkdir()
    keep(root, 7, "build", "dist/pkg.whl", "wheel")
    keep(root, 7, "other", "x.txt", "not mine")
    build = Build(id=7, repo="/srv/app.git")
    give_artifacts(root, build, PIPELINE, PIPELINE.step("use"), workspace)
    copied = workspace / INBOX / "use" / "build" / "dist" / "pkg.whl"
    assert "wheel" == copied.read_text()
    assert not (workspace / INBOX / "use" / "other").exists()
    copied.write_text("changed by the step")
    assert "wheel" == (artifact_dir(root, build.repo, 7, "build") / "dist/pkg.whl").read_text()


def test_a_symlink_left_where_the_inbox_goes_is_replaced(tmp_path):
    root, workspace, outside = tmp_path / "artifacts", tmp_path / "ws", tmp_path / "outside"
    workspace.mkdir()
    outside.mkdir()
    keep(root, 7, "build", "a.txt", "a")
    os.symlink(outside, workspace / INBOX)
    give_artifacts(
        root, Build(id=7, repo="/srv/app.git"), PIPELINE, PIPELINE.step("use"), workspace
    )
    assert [] == list(outside.iterdir())
    assert (workspace / INBOX).is_dir() and not (workspace / INBOX).is_symlink()
    (workspace / INBOX / "use").rename(workspace / "moved")
    os.symlink(outside, workspace / INBOX / "use")
    give_artifacts(
        root, Build(id=7, repo="/srv/app.git"), PIPELINE, PIPELINE.step("use"), workspace
    )
    assert [] == list(outside.iterdir())


def test_a_rerun_takes_a_reused_step_s_artifacts_from_the_earlier_build(tmp_path):
    root, workspace = tmp_path / "artifacts", tmp_path / "ws"
    workspace.mkdir()
    keep(root, 7, "build", "a.txt", "from build 7")
    keep(root, 8, "test", "b.txt", "from build 8")
    rerun = Build(id=8, repo="/srv/app.git", reuse_from=7)
    give_artifacts(root, rerun, PIPELINE, PIPELINE.step("use"), workspace)
    assert "from build 7" == (workspace / INBOX / "use" / "build" / "a.txt").read_text()
    assert "from build 8" == (workspace / INBOX / "use" / "test" / "b.txt").read_text()
