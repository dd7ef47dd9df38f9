"""sauci.source.snapshot: the working tree as it is, copied for ``sauci run``."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from sauci.source.git import GitSource
from sauci.source.snapshot import copy_working_tree, snapshot_workspace

GIT = ["git", "-c", "user.name=Tester", "-c", "user.email=t@example.com"]


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        [*GIT, *args], cwd=repo, check=True, capture_output=True, text=True
    ).stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "kept.txt").write_text("committed\n")
    (repo / "edited.txt").write_text("committed\n")
    (repo / "deleted.txt").write_text("committed\n")
    (repo / "tool.sh").write_text("#!/bin/sh\necho tool\n")
    (repo / "tool.sh").chmod(0o755)
    (repo / "sub").mkdir()
    (repo / "sub" / "deep.txt").write_text("deep\n")
    (repo / ".gitignore").write_text("ignored.txt\nbuild/\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "first")
    (repo / "edited.txt").write_text("edited\n")
    (repo / "deleted.txt").unlink()
    (repo / "untracked.txt").write_text("new\n")
    (repo / "ignored.txt").write_text("ignored\n")
    (repo / "build").mkdir()
    (repo / "build" / "out.o").write_text("ignored\n")
    return repo


def files_under(root: Path) -> dict[str, str]:
    """Every path under ``root`` (not through links, .git left out): its kind or text."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d != ".git" or Path(dirpath) != root]
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            path = Path(dirpath, name)
            rel = str(path.relative_to(root))
            if rel == ".git":
                continue
            if path.is_symlink():
                found[rel] = "-> " + os.readlink(path)
            else:
                found[rel] = path.read_text()
    return found


def test_the_copy_is_the_working_tree_as_it_is(repo, tmp_path):
    """Edited files as edited, untracked ones in, ignored and deleted ones out."""
    source = GitSource(repo)
    dest = tmp_path / "ws"
    snapshot = snapshot_workspace(source, source.resolve("HEAD"), dest)
    assert {
        ".gitignore": "ignored.txt\nbuild/\n",
        "kept.txt": "committed\n",
        "edited.txt": "edited\n",
        "tool.sh": "#!/bin/sh\necho tool\n",
        "sub/deep.txt": "deep\n",
        "untracked.txt": "new\n",
    } == files_under(dest)
    assert 6 == snapshot.files
    assert snapshot.changed
    assert os.access(dest / "tool.sh", os.X_OK)
    source.remove(dest)
    assert not dest.exists()
    assert 1 == len(git(repo, "worktree", "list").splitlines())


def test_git_in_the_copy_sees_the_changes_on_top_of_head(repo, tmp_path):
    """Steps that ask git (git describe, setuptools-scm) see HEAD and the changes."""
    source = GitSource(repo)
    dest = tmp_path / "ws"
    head = source.resolve("HEAD")
    snapshot_workspace(source, head, dest)
    assert head == git(dest, "rev-parse", "HEAD").strip()
    status = sorted(git(dest, "status", "--porcelain").splitlines())
    assert [" D deleted.txt", " M edited.txt", "?? untracked.txt"] == status
    assert "" == git(repo, "status", "--porcelain", "--", "kept.txt")  # the user's repo untouched
    source.remove(dest)


def test_a_repository_with_no_commit_yet_is_copied_plainly(tmp_path):
    repo = tmp_path / "fresh"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / ".sauci.yml").write_text("steps: {}\n")
    dest = tmp_path / "ws"
    snapshot_workspace(GitSource(repo), None, dest)
    assert {".sauci.yml": "steps: {}\n"} == files_under(dest)


def test_links_are_copied_as_links_never_followed(repo, tmp_path):
    """Hostile: links out of the repository, to a file and to a directory, and a
    tracked directory replaced by a link to a directory outside: nothing
    outside is read, nothing is written outside the copy."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "deep.txt").write_text("SECRET\n")
    (outside / "other").write_text("SECRET\n")
    (repo / "to-file").symlink_to(outside / "other")
    (repo / "to-dir").symlink_to(outside)
    (repo / "relative").symlink_to("kept.txt")
    (repo / "sub" / "deep.txt").unlink()
    (repo / "sub").rmdir()
    (repo / "sub").symlink_to(outside)  # the index still lists sub/deep.txt
    dest = tmp_path / "ws"
    source = GitSource(repo)
    snapshot = snapshot_workspace(source, source.resolve("HEAD"), dest)
    copied = files_under(dest)
    assert "SECRET\n" not in copied.values()
    assert f"-> {outside / 'other'}" == copied["to-file"]
    assert f"-> {outside}" == copied["to-dir"]
    assert "-> kept.txt" == copied["relative"]
    assert "-> " + str(outside) == copied["sub"]
    assert 4 == snapshot.links
    assert ["deep.txt", "other"] == sorted(os.listdir(outside))  # nothing written there


def test_odd_names_and_a_data_directory_inside_the_repository(repo, tmp_path):
    (repo / "with\nnewline and space.txt").write_text("odd\n")
    (repo / os.fsdecode(b"latin-\xe9.txt")).write_text("latin\n")
    data = repo / ".sauci-data"
    (data / "workspaces").mkdir(parents=True)
    (data / "sauci.db").write_text("db")
    dest = tmp_path / "ws"
    dest.mkdir()
    copy_working_tree(repo, dest, skip=data)
    copied = files_under(dest)
    assert "odd\n" == copied["with\nnewline and space.txt"]
    assert "latin\n" == copied[os.fsdecode(b"latin-\xe9.txt")]
    assert not any(name.startswith(".sauci-data") for name in copied)


def test_a_nested_repository_is_copied_without_its_git_directory(repo, tmp_path):
    nested = repo / "vendor" / "lib"
    nested.mkdir(parents=True)
    git(nested, "init", "-q", "-b", "main")
    (nested / "lib.py").write_text("x = 1\n")
    (nested / ".gitignore").write_text("*.pyc\n")
    (nested / "lib.pyc").write_text("compiled")
    dest = tmp_path / "ws"
    dest.mkdir()
    copy_working_tree(repo, dest)
    copied = files_under(dest)
    assert "x = 1\n" == copied["vendor/lib/lib.py"]
    assert "vendor/lib/lib.pyc" not in copied
    assert not (dest / "vendor" / "lib" / ".git").exists()


def test_a_clean_working_tree_is_not_marked_changed(tmp_path):
    repo = tmp_path / "clean"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "a.txt").write_text("a\n")
    (repo / ".gitignore").write_text("*.log\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "first")
    (repo / "run.log").write_text("ignored\n")
    source = GitSource(repo)
    head = source.resolve("HEAD")
    assert not snapshot_workspace(source, head, tmp_path / "one").changed
    git(repo, "rm", "-q", "--cached", "a.txt")  # staged only: a change all the same
    assert snapshot_workspace(source, head, tmp_path / "two").changed


def test_the_callers_work_is_done_while_git_works(repo, tmp_path):
    """``meanwhile`` runs once, after git has started and before the copy (sauci
    run imports the pipeline reader then); the copy is the same."""
    source = GitSource(repo)
    dest = tmp_path / "ws"
    seen = []
    snapshot = snapshot_workspace(
        source, source.resolve("HEAD"), dest, meanwhile=lambda: seen.append(files_under(dest))
    )
    assert [{}] == seen  # nothing copied yet when it ran
    assert snapshot.changed
    assert "edited\n" == (dest / "edited.txt").read_text()
    source.remove(dest)
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    git(fresh, "init", "-q", "-b", "main")
    (fresh / "a.txt").write_text("a\n")
    snapshot_workspace(GitSource(fresh), None, tmp_path / "ws2", meanwhile=lambda: seen.append(1))
    assert [{}, 1] == seen
    assert {"a.txt": "a\n"} == files_under(tmp_path / "ws2")


def test_a_failure_meanwhile_leaves_git_unlocked_and_the_workspace_removable(repo, tmp_path):
    """Ctrl-C during the caller's work: git's worktree lock is let go, so the
    workspace can be removed and the next snapshot made."""
    source = GitSource(repo)
    head = source.resolve("HEAD")
    dest = tmp_path / "ws"

    def interrupted() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        snapshot_workspace(source, head, dest, meanwhile=interrupted)
    source.remove(dest)
    assert not dest.exists()
    snapshot_workspace(source, head, dest)
    assert "edited\n" == (dest / "edited.txt").read_text()
    source.remove(dest)
