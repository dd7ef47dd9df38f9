"""The data dir is private: 0700 directories, 0600 database files, never a shared
directory changed behind its owner's back."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from sauci.core.paths import make_private_dir, secure_data_dir
from sauci.exceptions import ConfigError


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_data_dir_and_its_parts_are_0700_and_the_database_0600(tmp_path):
    data = tmp_path / "a" / "data"
    data.mkdir(parents=True)
    (data / "sauci.db").write_text("")
    (data / "logs").mkdir(mode=0o755)
    secure_data_dir(data)
    assert 0o700 == mode(data)
    for name in ("logs", "spool", "cache", "mirrors", "artifacts", "workspaces"):
        assert 0o700 == mode(data / name), name
    assert 0o600 == mode(data / "sauci.db")


def test_traversable_lets_others_pass_through_to_workspaces_only(tmp_path):
    data = tmp_path / "data"
    secure_data_dir(data, traversable=True)
    assert (0o711, 0o711, 0o700) == (mode(data), mode(data / "workspaces"), mode(data / "logs"))


def test_a_world_readable_data_dir_of_ours_is_tightened(tmp_path):
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    data.chmod(0o755)
    make_private_dir(data)
    assert 0o700 == mode(data)


def test_a_cli_reading_the_store_keeps_a_server_s_traversal_right(tmp_path):
    data = tmp_path / "data"
    secure_data_dir(data, traversable=True)
    make_private_dir(data, traversable=None)
    assert 0o711 == mode(data)
    (tmp_path / "other").mkdir(mode=0o755)
    (tmp_path / "other").chmod(0o755)
    make_private_dir(tmp_path / "other", traversable=None)
    assert 0o711 == mode(tmp_path / "other")


def test_a_shared_directory_is_refused_not_changed(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    with pytest.raises(ConfigError, match="shared with other users"):
        make_private_dir(shared)
    assert 0o1777 == mode(shared)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to make a directory of another uid")
def test_another_user_s_directory_is_refused(tmp_path):
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    os.chown(theirs, 12345, 12345)
    with pytest.raises(ConfigError, match="owner uid 12345"):
        make_private_dir(theirs)
