"""A ``skip_on_hit`` cache saved as links from the workspace, its archive
written after the step: another build sees a whole entry or a clean miss,
never a part; a save that fails leaves nothing; a file that is not the
step's, a special file or a path leading out of the workspace is never
linked (hostile: what a pipeline puts under its cache paths)."""

from __future__ import annotations

import os
import tarfile
import threading
from pathlib import Path

import pytest

from sauci.core import cache_saver
from sauci.core.cache_archive import ArchiveError, unpack
from sauci.core.cache_saver import save_linked, wait_for_build, wait_for_key
from sauci.core.cache_store import CacheStore
from sauci.core.cache_tree import tree_path

ME = os.geteuid()


def _workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    (ws / ".venv" / "bin").mkdir(parents=True)
    (ws / ".venv" / "lib.py").write_text("x = 1\n")
    (ws / ".venv" / "bin" / "tool").write_text("#!/bin/sh\n")
    (ws / ".venv" / "bin" / "tool").chmod(0o755)
    (ws / ".venv" / "bin" / "python").symlink_to("/usr/bin/python3")
    os.link(ws / ".venv" / "lib.py", ws / ".venv" / "same.py")
    return ws


def _save(store: CacheStore, ws: Path, owner: int = ME, build: int = 1) -> int | None:
    return save_linked(store, "demo", "main", "k1", build, {"ws": ws}, {"ws": [".venv"]}, owner)


def _held(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """Hold every background archive until the event is set."""
    release = threading.Event()
    real = cache_saver.write_archive

    def slow(*args: object) -> None:
        assert release.wait(30)
        real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(cache_saver, "write_archive", slow)
    return release


def test_a_save_under_way_is_a_clean_miss_then_a_whole_entry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    store = CacheStore(tmp_path / "cache")
    ws = _workspace(tmp_path)
    release = _held(monkeypatch)
    size = _save(store, ws)
    assert size is not None and size > 0
    # The step's files are the entry's now: read-only, the workspace's too.
    assert 0o444 == (ws / ".venv" / "lib.py").stat().st_mode & 0o777
    assert 0o555 == (ws / ".venv" / "bin" / "tool").stat().st_mode & 0o777
    keys = store.keys_folder("demo", "main")
    assert (None, False) == store.find("demo", "main", "k1")  # under way: a clean miss
    assert not (keys / "k1.tar").exists() and not (keys / "k1.tree").exists()

    threading.Timer(0.2, release.set).start()
    wait_for_key(store, "demo", "k1")  # a build of this process waits for it
    entry, exact = store.find("demo", "main", "k1")
    assert entry is not None and exact
    tree = tree_path(entry.path)
    assert "x = 1\n" == (tree / "ws" / ".venv" / "lib.py").read_text()
    assert (tree / "ws" / ".venv" / "lib.py").stat().st_ino == (ws / ".venv/lib.py").stat().st_ino
    assert [".venv"] == sorted(os.listdir(tree / "ws"))
    assert ["k1.tar", "k1.tree"] == sorted(os.listdir(keys))  # no staging left
    # The archive unpacks (the fast way: it is SauCI's) to the same files, writable again.
    out = tmp_path / "out"
    out.mkdir()
    assert unpack(entry.path, {"ws": out}) > 0
    assert "x = 1\n" == (out / ".venv" / "lib.py").read_text()
    assert 0o644 == (out / ".venv" / "lib.py").stat().st_mode & 0o777
    assert 0o755 == (out / ".venv" / "bin" / "tool").stat().st_mode & 0o777
    assert "/usr/bin/python3" == os.readlink(out / ".venv" / "bin" / "python")
    assert (out / ".venv/same.py").stat().st_ino == (out / ".venv/lib.py").stat().st_ino
    with tarfile.open(entry.path) as tar:
        assert {(m.uid, m.gid, m.uname, m.gname) for m in tar} == {(0, 0, "", "")}
        assert all(m.name.startswith("ws/.venv") for m in tar)


def test_a_failed_archive_leaves_no_entry_and_no_staging(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    store = CacheStore(tmp_path / "cache")
    ws = _workspace(tmp_path)

    def broken(*args: object) -> None:
        raise ArchiveError("disk full")

    monkeypatch.setattr(cache_saver, "write_archive", broken)
    assert _save(store, ws, build=7)
    wait_for_build(7)
    assert (None, False) == store.find("demo", "main", "k1")
    assert [] == os.listdir(store.keys_folder("demo", "main"))
    assert [] == [p for p in os.listdir(store.repo_dir("demo")) if p.startswith(".incoming")]


def test_a_save_over_the_limit_keeps_nothing(tmp_path: Path):
    store = CacheStore(tmp_path / "cache", limit=1024)
    # Over the limit already as links: no archive is started (a sparse file
    # costs the copy nothing and its archive its size); the caller saves the
    # usual way, which stops writing at the limit.
    assert _save(store, _workspace(tmp_path), build=8) is None
    wait_for_build(8)
    assert (None, False) == store.find("demo", "main", "k1")
    assert [] == os.listdir(store.keys_folder("demo", "main"))


def test_a_file_not_the_steps_is_never_taken_and_nothing_changes(tmp_path: Path):
    store = CacheStore(tmp_path / "cache")
    ws = _workspace(tmp_path)
    assert _save(store, ws, owner=ME + 12345) is None  # the caller saves the usual way
    assert 0o644 == (ws / ".venv" / "lib.py").stat().st_mode & 0o777
    assert ME == (ws / ".venv" / "lib.py").stat().st_uid
    assert [] == os.listdir(store.keys_folder("demo", "main"))


def test_a_special_file_is_never_linked(tmp_path: Path):
    store = CacheStore(tmp_path / "cache")
    ws = _workspace(tmp_path)
    os.mkfifo(ws / ".venv" / "pipe")
    assert _save(store, ws) is None
    assert 0o644 == (ws / ".venv" / "lib.py").stat().st_mode & 0o777
    assert [] == os.listdir(store.keys_folder("demo", "main"))


def test_a_cache_path_through_a_symlink_is_never_followed(tmp_path: Path):
    store = CacheStore(tmp_path / "cache")
    outside = tmp_path / "outside"
    (outside / "venv").mkdir(parents=True)
    (outside / "venv" / "secret").write_text("host file\n")
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "lead").symlink_to(outside)
    roots = {"ws": ws}
    for hostile in ("lead/venv", "../outside/venv", "lead/../lead/venv"):
        assert save_linked(store, "demo", "main", "k2", 9, roots, {"ws": [hostile]}, ME) is None
    assert 0o644 == (outside / "venv" / "secret").stat().st_mode & 0o777
    assert [] == os.listdir(store.keys_folder("demo", "main"))
    # A cache path that is itself a link is kept as the link, not what it names.
    (ws / ".venv").symlink_to(outside / "venv")
    assert save_linked(store, "demo", "main", "k3", 9, roots, {"ws": [".venv"]}, ME)
    wait_for_build(9)
    entry, _ = store.find("demo", "main", "k3")
    assert entry is not None
    with tarfile.open(entry.path) as tar:
        assert ["ws/.venv"] == [m.name for m in tar] and tar.getmember("ws/.venv").issym()
    assert 0o644 == (outside / "venv" / "secret").stat().st_mode & 0o777


def test_a_build_that_looks_the_key_up_meanwhile_waits_and_hits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from sauci.core._step_cache import restore_cache
    from sauci.core.models import Build
    from sauci.core.pipeline import parse_pipeline

    step = parse_pipeline(
        "steps:\n  install:\n    run: 'true'\n"
        "    cache: {paths: [.venv], key: k1, skip_on_hit: true}\n"
    ).steps[0]
    store = CacheStore(tmp_path / "cache")
    release = _held(monkeypatch)
    assert _save(store, _workspace(tmp_path), build=10)
    threading.Timer(0.3, release.set).start()
    written: list[str] = []
    ws2 = tmp_path / "ws2"
    ws2.mkdir()
    build = Build(id=11, repo="demo", ref="refs/heads/main")
    state = restore_cache(store, build, step, ws2, {}, written.append)
    assert state.hit, written
    assert "for the save of k1 under way" in "".join(written)
    assert "x = 1\n" == (ws2 / ".venv" / "lib.py").read_text()
