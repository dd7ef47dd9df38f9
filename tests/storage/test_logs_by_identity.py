"""Logs and artifacts are kept under the build's uuid, so a reset database (its
numbering starts again at #1) never shows or appends to an old build's log."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from sauci.cli import main
from sauci.core.models import BuildRequest, request_again
from sauci.storage import open_store

GIT = ["git", "-c", "user.name=Tester", "-c", "user.email=t@example.com"]


def _repo(path: Path, word: str) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / ".sauci.yml").write_text(
        f"steps:\n  say:\n    run: echo {word}; mkdir -p out; echo {word} > out/a.txt\n"
        "    artifacts: [out/a.txt]\n"
    )
    subprocess.run([*GIT, "init", "-q", "-b", "main"], cwd=path, check=True)
    subprocess.run([*GIT, "add", "."], cwd=path, check=True)
    subprocess.run([*GIT, "commit", "-q", "-m", word], cwd=path, check=True)
    return path


def test_a_reset_database_never_shows_the_old_build_1s_log(tmp_path, monkeypatch, capsys):
    data = tmp_path / "data"
    monkeypatch.setenv("SAUCI_DATA_DIR", str(data))
    repo = _repo(tmp_path / "repo", "old-build-output")
    monkeypatch.setenv("SAUCI_STORE", f"sqlite:///{tmp_path / 'first.db'}")
    assert main(["run", str(repo), "--color", "never"]) == 0
    first = open_store(f"sqlite:///{tmp_path / 'first.db'}")
    old = first.list_steps(1)[0]
    old_build = first.get_build(1)
    first.close()

    # The database is reset (a new file), the data dir stays.
    (repo / ".sauci.yml").write_text(
        "steps:\n  say:\n    run: echo new-build-output; mkdir -p out; echo new > out/a.txt\n"
        "    artifacts: [out/a.txt]\n"
    )
    subprocess.run([*GIT, "commit", "-q", "-am", "new"], cwd=repo, check=True)
    monkeypatch.setenv("SAUCI_STORE", f"sqlite:///{tmp_path / 'second.db'}")
    capsys.readouterr()
    assert main(["run", str(repo), "--color", "never"]) == 0
    assert "build #1" in capsys.readouterr().out
    assert main(["logs", "1", "say"]) == 0
    assert capsys.readouterr().out == "new-build-output\n"
    assert main(["show", "1", "--color", "never"]) == 0
    shown = capsys.readouterr().out
    assert "old-build-output" not in shown

    second = open_store(f"sqlite:///{tmp_path / 'second.db'}")
    new = second.list_steps(1)[0]
    new_build = second.get_build(1)
    second.close()
    assert new_build.uuid and old_build.uuid and new_build.uuid != old_build.uuid
    assert new.log_path != old.log_path
    assert Path(new.log_path).read_bytes() == b"new-build-output\n"
    # the old build's files are untouched
    assert Path(old.log_path).read_bytes() == b"old-build-output\n"
    artifacts = sorted(p.read_text() for p in (data / "artifacts").rglob("a.txt"))
    assert artifacts == ["new\n", "old-build-output\n"]


@pytest.mark.parametrize("url", ["memory://", "sqlite"])
def test_every_build_gets_a_uuid_of_its_own(url, tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 's.db'}" if url == "sqlite" else url)
    try:
        a = store.create_build(BuildRequest(repo="/r"))
        b = store.create_build(BuildRequest(repo="/r"))
        assert len(a.uuid) == 32 and a.uuid != b.uuid
        assert store.get_build(a.id).uuid == a.uuid
        # a retry is a new build: a new uuid
        again = store.create_build(request_again(a, attempt=2))
        assert again.uuid not in (a.uuid, "")
    finally:
        store.close()
