"""Cache archives: a round trip keeps files, modes and symlinks (a venv's
``bin/python``); packing never follows a link out of the workspace; hostile
archives never write outside their root."""

from __future__ import annotations

import contextlib
import io
import os
import tarfile
from pathlib import Path

import pytest

from sauci.core.cache_archive import ArchiveError, pack, unpack


def test_round_trip_keeps_files_modes_and_links(tmp_path: Path):
    ws = tmp_path / "ws"
    (ws / ".venv" / "bin").mkdir(parents=True)
    (ws / ".venv" / "bin" / "tool").write_text("#!/bin/sh\n")
    (ws / ".venv" / "bin" / "tool").chmod(0o755)
    os.symlink("/usr/bin/python3", ws / ".venv" / "bin" / "python")
    os.symlink("tool", ws / ".venv" / "bin" / "tool2")
    archive = tmp_path / "c.tar"
    assert 1 == pack(archive, {"ws": ws}, {"ws": [".venv", "missing"]})
    fresh = tmp_path / "fresh"
    assert unpack(archive, {"ws": fresh}) >= 4
    assert "#!/bin/sh\n" == (fresh / ".venv" / "bin" / "tool").read_text()
    assert os.access(fresh / ".venv" / "bin" / "tool", os.X_OK)
    assert "/usr/bin/python3" == os.readlink(fresh / ".venv" / "bin" / "python")
    assert "tool" == os.readlink(fresh / ".venv" / "bin" / "tool2")


def test_pack_refuses_a_symlinked_directory_on_the_way(tmp_path: Path):
    ws = tmp_path / "ws"
    ws.mkdir()
    outside = tmp_path / "outside"
    (outside / "x").mkdir(parents=True)
    (outside / "x" / "secret").write_text("s")
    os.symlink(outside, ws / "link")
    with pytest.raises(ArchiveError, match="not a directory"):
        pack(tmp_path / "c.tar", {"ws": ws}, {"ws": ["link/x"]})


def test_pack_keeps_a_symlinked_path_as_a_link(tmp_path: Path):
    ws = tmp_path / "ws"
    ws.mkdir()
    (tmp_path / "secret").write_text("s")
    os.symlink(tmp_path / "secret", ws / ".venv")
    archive = tmp_path / "c.tar"
    pack(archive, {"ws": ws}, {"ws": [".venv"]})
    with tarfile.open(archive) as tar:
        members = tar.getmembers()
    assert [("ws/.venv", True)] == [(m.name, m.issym()) for m in members]


def _hostile(path: Path, *members: tuple[str, bytes | str]) -> None:
    """A tar of files (bytes) and symlinks (str targets), as written."""
    with tarfile.open(path, "w") as tar:
        for name, body in members:
            info = tarfile.TarInfo(name)
            if isinstance(body, str):
                info.type, info.linkname = tarfile.SYMTYPE, body
                tar.addfile(info)
            else:
                info.size = len(body)
                tar.addfile(info, io.BytesIO(body))


@pytest.mark.parametrize(
    "members",
    [
        [("ws/../escaped", b"x")],
        [("ws/a/../../escaped", b"x")],
        [("ws//abs/escaped", b"x")],
        [("ws/link", "../"), ("ws/link/escaped", b"x")],
        [("ws/link", "/"), ("ws/link/escaped", b"x")],
    ],
)
def test_hostile_archives_write_nothing_outside(tmp_path: Path, members):
    archive = tmp_path / "evil.tar"
    _hostile(archive, *members)
    ws = tmp_path / "area" / "ws"
    ws.mkdir(parents=True)
    # Refused, or (a leading "/") written inside: never outside.
    with contextlib.suppress(ArchiveError):
        unpack(archive, {"ws": ws})
    assert not (tmp_path / "area" / "escaped").exists()
    assert not (tmp_path / "escaped").exists()
    assert not Path("/abs/escaped").exists()
    assert not Path("/escaped").exists()


def test_a_link_out_then_a_file_through_it_is_refused(tmp_path: Path):
    archive = tmp_path / "evil.tar"
    _hostile(archive, ("ws/link", str(tmp_path)), ("ws/link/escaped", b"x"))
    with pytest.raises(ArchiveError):
        unpack(archive, {"ws": tmp_path / "ws"})
    assert not (tmp_path / "escaped").exists()


def test_a_link_already_in_the_workspace_is_not_written_through(tmp_path: Path):
    archive = tmp_path / "c.tar"
    _hostile(archive, ("ws/.venv/pyvenv.cfg", b"owned"))
    ws = tmp_path / "ws"
    ws.mkdir()
    victim = tmp_path / "victim"
    victim.mkdir()
    os.symlink(victim, ws / ".venv")  # committed by the pushed repository
    with pytest.raises(ArchiveError):
        unpack(archive, {"ws": ws})
    assert not (victim / "pyvenv.cfg").exists()


def test_members_of_a_root_not_given_are_skipped(tmp_path: Path):
    archive = tmp_path / "c.tar"
    _hostile(archive, ("home/.bashrc", b"evil"), ("ws/ok", b"fine"))
    ws = tmp_path / "ws"
    assert 1 == unpack(archive, {"ws": ws})
    assert "fine" == (ws / "ok").read_text()
    assert not (tmp_path / ".bashrc").exists()
