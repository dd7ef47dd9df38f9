"""Workspace globs find what pathlib's glob finds, and never go through a symlink."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sauci.core.artifacts import collect_artifacts
from sauci.core.workspace_files import matching_files, split_glob

TREE = [
    "a.txt",
    ".hidden",
    "reports/junit.xml",
    "reports/sub/deep.xml",
    "reports/sub/notes.md",
    "dist/pkg-1.0.tar.gz",
    "dist/wheels/pkg-1.0-py3-none-any.whl",
    "src/x/[odd].py",
]


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    for rel in TREE:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(rel)
    return tmp_path


def found(root: Path, *globs: str) -> list[str]:
    patterns = [split_glob(g) for g in globs]
    return [m.relative for m in matching_files(root, [p for p in patterns if p is not None])]


def pathlib_files(root: Path, *globs: str) -> list[str]:
    out = set()
    for g in globs:
        for match in root.glob(g):
            paths = [match] if match.is_file() else [p for p in match.rglob("*") if p.is_file()]
            out.update(p.relative_to(root).as_posix() for p in paths)
    return sorted(out)


@pytest.mark.parametrize(
    "globs",
    [
        ("reports/*.xml",),
        ("reports/**/*.xml",),
        ("**/*.xml",),
        ("*",),
        ("dist",),
        ("dist/**",),
        ("dist/*.tar.gz", "dist/wheels/*.whl"),
        ("src/x/[[]odd].py",),
        ("nothing/*",),
        ("./reports/junit.xml",),
        ("?.txt",),
        ("**/sub/**",),
        ("**/**/*.xml",),
        ("reports/**/sub/*.md",),
        ("**",),
    ],
)
def test_globs_find_what_pathlib_finds(tree, globs):
    assert pathlib_files(tree, *globs) == sorted(found(tree, *globs))


@pytest.mark.parametrize("glob", ["/etc/passwd", "../outside", "reports/../../x"])
def test_globs_that_leave_the_workspace_match_nothing(glob):
    assert None is split_glob(glob)


def test_a_directory_symlink_is_never_walked(tree, tmp_path_factory):
    outside = tmp_path_factory.mktemp("outside")
    (outside / "secret.xml").write_text("secret")
    os.symlink(outside, tree / "reports" / "link")
    os.symlink("/", tree / "root")
    assert ["reports/junit.xml", "reports/sub/deep.xml"] == found(tree, "reports/**/*.xml")
    assert [] == found(tree, "root", "root/**", "reports/link/*")


def test_a_file_symlink_is_not_reported(tree):
    os.symlink("/etc/passwd", tree / "reports" / "passwd.xml")
    os.symlink(tree / "a.txt", tree / "reports" / "inside.xml")
    assert ["reports/junit.xml"] == found(tree, "reports/*.xml")


def test_a_file_swapped_for_a_symlink_after_the_walk_is_refused(tree):
    for match in matching_files(tree, [("a.txt",)]):
        (tree / "a.txt").unlink()
        os.symlink("/etc/passwd", tree / "a.txt")
        with pytest.raises(OSError), match.open():
            pass


def test_artifacts_copy_only_regular_files_of_the_workspace(tree, tmp_path_factory):
    dest = tmp_path_factory.mktemp("dest")
    os.symlink("/", tree / "dist" / "root")
    kept = collect_artifacts(tree, ["dist", "../x", "/etc/passwd"], dest)
    expected = ["dist/pkg-1.0.tar.gz", "dist/wheels/pkg-1.0-py3-none-any.whl"]
    assert expected == [a.path for a in kept]
    assert "dist/pkg-1.0.tar.gz" == (dest / "dist/pkg-1.0.tar.gz").read_text()


def test_a_pipeline_file_linked_inside_its_repository_is_read(tmp_path):
    from sauci.core.pipeline import load_pipeline

    (tmp_path / "ci").mkdir()
    (tmp_path / "ci" / "pipeline.yml").write_text("steps:\n  a:\n    run: echo\n")
    (tmp_path / ".sauci.yml").symlink_to("ci/pipeline.yml")
    assert ["a"] == [s.name for s in load_pipeline(tmp_path).steps]


@pytest.mark.parametrize("target", ["/proc/self/environ", "../elsewhere.yml", "/dev/stdin"])
def test_a_pipeline_file_linked_out_of_its_repository_is_refused(tmp_path, target):
    from sauci.core.pipeline import load_pipeline
    from sauci.exceptions import ConfigError

    repo = tmp_path / "repo"
    repo.mkdir()
    (tmp_path / "elsewhere.yml").write_text("steps:\n  leak:\n    run: echo\n")
    (repo / ".sauci.yml").symlink_to(target)
    with pytest.raises(ConfigError, match="is a symbolic link out of its repository"):
        load_pipeline(repo)


def test_a_pipeline_fifo_is_refused_without_blocking(tmp_path):
    from sauci.core.pipeline import load_pipeline
    from sauci.exceptions import ConfigError

    os.mkfifo(tmp_path / ".sauci.yml")
    with pytest.raises(ConfigError, match="is not a regular file"):
        load_pipeline(tmp_path)


def test_a_hostile_glob_over_a_deep_workspace_costs_one_pass(tmp_path, monkeypatch):
    """Hostile: a pushed ``**/a/**/a/.../b`` over a step's ``a/a/a/...``. Trying
    each way every ``**`` could stretch takes exponential time (hours for 12
    of them over 40 levels) in the server's thread after the step; the match
    is one pass over the path, at most components x pattern parts fnmatch calls."""
    import sauci.core.workspace_files as workspace_files

    depth, stars = 40, 12
    deep = tmp_path.joinpath(*["a"] * depth)
    deep.mkdir(parents=True)
    (deep / "c").write_text("x")
    pattern = "/".join(["**", "a"] * stars + ["b"])
    calls = 0
    real = workspace_files.fnmatchcase

    def counted(name: str, pat: str) -> bool:
        nonlocal calls
        calls += 1
        if calls > 1_000_000:
            raise AssertionError("the glob is matched by trying every split of its '**'")
        return real(name, pat)

    monkeypatch.setattr(workspace_files, "fnmatchcase", counted)
    assert found(tmp_path, pattern) == []
    parts = 2 * stars + 1
    # Each directory and file on the way is matched once: at most depth x parts each.
    assert calls <= (depth + 1) * (depth + 1) * parts
