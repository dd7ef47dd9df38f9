"""The fast restore of cache archives (GNU tar into a private directory, then
one rename per top-level path): taken only for archives SauCI packed and only
when nothing is in the way, and it gives the same tree as the filtered way."""

from __future__ import annotations

import os
import stat
import tarfile
from pathlib import Path

import pytest

from sauci.core import cache_archive
from sauci.core.cache_archive import ArchiveError, pack, unpack

pytestmark = pytest.mark.skipif(cache_archive.gnu_tar() is None, reason="no GNU tar")


@pytest.fixture
def moved(monkeypatch) -> list[int | None]:
    """What each call of the fast way returned (None: it stood aside)."""
    calls: list[int | None] = []
    real = cache_archive._unpack_moving

    def spy(source, roots):
        result = real(source, roots)
        calls.append(result)
        return result

    monkeypatch.setattr(cache_archive, "_unpack_moving", spy)
    return calls


def venv(ws: Path) -> None:
    (ws / ".venv" / "bin").mkdir(parents=True)
    (ws / ".venv" / "lib" / "pkg").mkdir(parents=True)
    (ws / ".venv" / "bin" / "tool").write_text("#!/bin/sh\n")
    (ws / ".venv" / "bin" / "tool").chmod(0o755)
    (ws / ".venv" / "lib" / "pkg" / "m.py").write_text("x = 1\n")
    os.symlink("/usr/bin/python3", ws / ".venv" / "bin" / "python")


def tree(root: Path) -> dict[str, tuple[str, int]]:
    out = {}
    for path in sorted(root.rglob("*")):
        st = os.lstat(path)
        kind = (
            "link:" + os.readlink(path)
            if path.is_symlink()
            else "dir"
            if path.is_dir()
            else path.read_text()
        )
        out[str(path.relative_to(root))] = (kind, stat.S_IMODE(st.st_mode) & 0o111)
    return out


def test_the_fast_way_gives_the_same_tree_and_leaves_no_staging(tmp_path, moved):
    ws = tmp_path / "build" / "ws"
    venv(ws)
    archive = tmp_path / "c.tar"
    pack(archive, {"ws": ws}, {"ws": [".venv"]})
    fresh = tmp_path / "next" / "ws"
    fresh.mkdir(parents=True)
    assert unpack(archive, {"ws": fresh}) >= 6
    assert [True] == [m is not None for m in moved]
    assert tree(ws) == tree(fresh)
    assert ["ws"] == os.listdir(fresh.parent)  # the private staging directory is gone


def test_pack_keeps_no_special_bits_no_owner_and_no_special_files(tmp_path):
    ws = tmp_path / "ws"
    (ws / "keep").mkdir(parents=True)
    (ws / "keep" / "suid").write_text("x")
    (ws / "keep" / "suid").chmod(0o4755)
    os.mkfifo(ws / "keep" / "pipe")
    archive = tmp_path / "c.tar"
    pack(archive, {"ws": ws}, {"ws": ["keep"]})
    with tarfile.open(archive) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert "ws/keep/pipe" not in members
    assert 0o755 == members["ws/keep/suid"].mode
    assert {0} == {m.uid for m in members.values()} | {m.gid for m in members.values()}
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    unpack(archive, {"ws": fresh})
    assert not os.stat(fresh / "keep" / "suid").st_mode & stat.S_ISUID


def test_a_link_in_the_way_takes_the_filtered_way_and_nothing_is_written_outside(tmp_path, moved):
    ws = tmp_path / "ws"
    venv(ws)
    archive = tmp_path / "c.tar"
    pack(archive, {"ws": ws}, {"ws": [".venv"]})
    outside = tmp_path / "outside"
    outside.mkdir()
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    os.symlink(outside, fresh / ".venv")  # planted by the pushed repository
    with pytest.raises(ArchiveError):
        unpack(archive, {"ws": fresh})
    assert [None] == moved  # the fast way stood aside
    assert [] == os.listdir(outside)


def test_an_archive_sauci_did_not_pack_takes_the_filtered_way(tmp_path, moved):
    archive = tmp_path / "foreign.tar"
    with tarfile.open(archive, "w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("ws/file")
        info.size = 0
        tar.addfile(info)
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    assert 1 == unpack(archive, {"ws": fresh})
    assert [] == moved
    assert (fresh / "file").is_file()
