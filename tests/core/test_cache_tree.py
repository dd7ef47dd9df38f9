"""Cache entries kept unpacked (``<key>.tree``) and restored as hard links:
the same tree as the archive gives, the files shared with the cache and
read-only, nothing left behind, and the archive's way whenever linking
cannot be done cleanly."""

from __future__ import annotations

import os
import stat
import tarfile
import threading
from pathlib import Path

import pytest

from sauci.core import cache_saver, cache_tree
from sauci.core.cache_archive import gnu_tar, pack, unpack
from sauci.core.cache_store import CacheStore
from sauci.core.cache_tree import link_copy, link_tree, make_tree, ready_path, tree_path

pytestmark = pytest.mark.skipif(
    gnu_tar() is None or cache_tree._gnu_cp() is None, reason="no GNU tar and cp"
)


def venv(ws: Path) -> None:
    (ws / ".venv" / "bin").mkdir(parents=True)
    (ws / ".venv" / "lib" / "pkg").mkdir(parents=True)
    (ws / ".venv" / "bin" / "tool").write_text("#!/bin/sh\n")
    (ws / ".venv" / "bin" / "tool").chmod(0o700)
    (ws / ".venv" / "lib" / "pkg" / "m.py").write_text("x = 1\n")
    (ws / ".venv" / "lib" / "pkg" / "secret").write_text("s\n")
    (ws / ".venv" / "lib" / "pkg" / "secret").chmod(0o600)
    os.symlink("/usr/bin/python3", ws / ".venv" / "bin" / "python")
    os.symlink("lib", ws / ".venv" / "lib64")


def listing(root: Path) -> dict[str, str]:
    out = {}
    for path in sorted(root.rglob("*")):
        if path.is_symlink():
            out[str(path.relative_to(root))] = "link:" + os.readlink(path)
        elif path.is_dir():
            out[str(path.relative_to(root))] = "dir"
        else:
            out[str(path.relative_to(root))] = path.read_text()
    return out


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    source = tmp_path / "source"
    venv(source)
    target = tmp_path / "keys" / "venv-1.tar"
    target.parent.mkdir()
    assert 1 == pack(target, {"ws": source}, {"ws": [".venv"]})
    return target


def test_a_linked_restore_gives_the_archives_tree_with_shared_read_only_files(
    tmp_path: Path, archive: Path
):
    tree = make_tree(archive)
    assert tree == tree_path(archive)
    unpacked, linked = tmp_path / "unpacked", tmp_path / "linked"
    unpacked.mkdir()
    linked.mkdir()
    unpack(archive, {"ws": unpacked})
    assert [linked / ".venv"] == link_tree(tree, {"ws": linked})
    assert listing(unpacked) == listing(linked)
    module = linked / ".venv" / "lib" / "pkg" / "m.py"
    assert os.stat(module).st_ino == os.stat(tree / "ws" / ".venv" / "lib" / "pkg" / "m.py").st_ino
    # No write bit on a linked file; readable (and runnable) by a uid that is not its owner.
    assert 0o444 == stat.S_IMODE(os.stat(module).st_mode)
    assert 0o444 == stat.S_IMODE(os.stat(linked / ".venv/lib/pkg/secret").st_mode)
    assert 0o555 == stat.S_IMODE(os.stat(linked / ".venv/bin/tool").st_mode)
    # Directories are made afresh (the step gets them), never shared.
    assert os.stat(linked / ".venv" / "lib").st_ino != os.stat(tree / "ws/.venv/lib").st_ino
    assert [] == [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging left
    assert [] == [p for p in archive.parent.iterdir() if p.name.startswith(".")]


def test_replacing_a_linked_file_leaves_the_cache_as_it_was(tmp_path: Path, archive: Path):
    """What pip and Python do to files they change: remove (or rename over)
    them and write new ones; the cache's copy is not touched."""
    tree = make_tree(archive)
    assert tree is not None
    ws = tmp_path / "ws"
    ws.mkdir()
    link_tree(tree, {"ws": ws})
    module = ws / ".venv" / "lib" / "pkg" / "m.py"
    module.unlink()
    module.write_text("x = 2\n")
    (ws / ".venv" / "lib" / "pkg" / "new.py").write_text("new\n")
    assert "x = 1\n" == (tree / "ws/.venv/lib/pkg/m.py").read_text()
    again = tmp_path / "again"
    again.mkdir()
    link_tree(tree, {"ws": again})
    assert "x = 1\n" == (again / ".venv/lib/pkg/m.py").read_text()
    assert not (again / ".venv/lib/pkg/new.py").exists()


def test_a_path_in_the_way_is_not_linked_and_nothing_is_written(tmp_path: Path, archive: Path):
    tree = make_tree(archive)
    assert tree is not None
    ws = tmp_path / "ws"
    (ws / ".venv").mkdir(parents=True)
    (ws / ".venv" / "mine").write_text("mine\n")
    assert link_tree(tree, {"ws": ws}) is None
    assert {".venv": "dir", ".venv/mine": "mine\n"} == listing(ws)
    assert [] == [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_a_link_in_the_way_is_neither_followed_nor_replaced(tmp_path: Path, archive: Path):
    tree = make_tree(archive)
    assert tree is not None
    outside = tmp_path / "outside"
    outside.mkdir()
    ws = tmp_path / "ws"
    ws.mkdir()
    os.symlink(outside, ws / ".venv")
    assert link_tree(tree, {"ws": ws}) is None
    assert [] == list(outside.iterdir())


def test_an_archive_sauci_did_not_pack_is_not_kept_unpacked(tmp_path: Path):
    foreign = tmp_path / "keys" / "foreign.tar"
    foreign.parent.mkdir()
    (tmp_path / "f").write_text("f\n")
    with tarfile.open(foreign, "w") as tar:
        tar.add(tmp_path / "f", arcname="ws/f")
    assert make_tree(foreign) is None
    assert not tree_path(foreign).exists()
    (tmp_path / "keys" / "garbage.tar").write_bytes(b"not a tar")
    assert make_tree(tmp_path / "keys" / "garbage.tar") is None


def test_an_unpacked_copy_counts_against_the_limit_and_goes_with_its_entry(tmp_path: Path):
    source = tmp_path / "source"
    venv(source)
    store = CacheStore(tmp_path / "cache", limit=10**9)
    staged = store.staging("r")
    pack(staged, {"ws": source}, {"ws": [".venv"]})
    first = store.commit("r", "main", "k1", staged)
    assert first is not None
    size = first.size
    assert size == store.usage("r")
    assert make_tree(first.path) is not None
    assert 2 * size == store.usage("r")
    # A save of the same key replaces the archive: its old unpacked copy goes.
    staged = store.staging("r")
    pack(staged, {"ws": source}, {"ws": [".venv"]})
    again = store.commit("r", "main", "k1", staged)
    assert again is not None and not tree_path(again.path).exists()
    make_tree(again.path)
    # A second entry over the limit evicts the first, unpacked copy and all.
    store.limit = 3 * size - 1  # k1 and its copy, and k2: one byte over
    staged = store.staging("r")
    pack(staged, {"ws": source}, {"ws": [".venv"]})
    store.commit("r", "main", "k2", staged)
    keys = store.tools_dir("r", "main").parent / "keys"
    assert ["k2.tar"] == sorted(os.listdir(keys))


def test_an_unpacked_copy_without_its_archive_is_removed(tmp_path: Path, archive: Path):
    store = CacheStore(tmp_path / "cache")
    keys = store.tools_dir("r", "main").parent / "keys"
    keys.mkdir(parents=True)
    (keys / "orphan.tree" / "ws").mkdir(parents=True)
    staged = store.staging("r")
    staged.write_bytes(archive.read_bytes())
    store.commit("r", "main", "k", staged)
    assert ["k.tar"] == sorted(os.listdir(keys))


def test_a_spare_linked_copy_is_taken_whole_by_the_next_restore(
    tmp_path: Path, archive: Path, monkeypatch: pytest.MonkeyPatch
):
    """A spare made beside the tree holds the tree's own files; a restore
    moves it in with one rename (no file linked while the build waits) and
    gives what linking from the tree gives."""
    tree = make_tree(archive)
    assert tree is not None
    expected = tmp_path / "expected"
    expected.mkdir()
    link_tree(tree, {"ws": expected})  # file by file: no spare yet
    assert link_copy(tree, ready_path(archive))
    assert not link_copy(tree, ready_path(archive))  # one spare at a time
    spare = ready_path(archive) / "ws" / ".venv" / "lib" / "pkg" / "m.py"
    assert os.stat(spare).st_ino == os.stat(tree / "ws/.venv/lib/pkg/m.py").st_ino

    def no_linking(*args: object) -> bytes:
        raise AssertionError("linked file by file, though a spare was there")

    monkeypatch.setattr(cache_tree, "_copy_as_links", no_linking)
    ws = tmp_path / "ws"
    ws.mkdir()
    assert [ws / ".venv"] == link_tree(tree, {"ws": ws})
    assert listing(expected) == listing(ws)
    assert (
        os.stat(ws / ".venv/lib/pkg/m.py").st_ino == os.stat(tree / "ws/.venv/lib/pkg/m.py").st_ino
    )
    assert not ready_path(archive).exists()  # taken: the next restore links (or takes a new one)
    assert [] == [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert [] == [p for p in archive.parent.iterdir() if p.name.startswith(".")]
    with pytest.raises(AssertionError, match="file by file"):
        link_tree(tree, {"ws": tmp_path / "other"})


def test_a_spare_copy_goes_with_its_entry(tmp_path: Path):
    """Replaced, evicted or left without its archive, an entry's spare goes
    too: a restore never takes the files of an entry that is not there."""
    source = tmp_path / "source"
    venv(source)
    store = CacheStore(tmp_path / "cache", limit=10**9)
    keys = store.tools_dir("r", "main").parent / "keys"

    def save(key: str) -> Path:
        staged = store.staging("r")
        pack(staged, {"ws": source}, {"ws": [".venv"]})
        entry = store.commit("r", "main", key, staged)
        assert entry is not None and make_tree(entry.path) is not None
        return entry.path

    first = save("k1")
    assert not store.keep_ready("r", "main", "nothing")  # no such entry
    assert store.keep_ready("r", "main", "k1")
    assert ready_path(first).is_dir()
    save("k1")  # saved again under the same key: the old files' spare goes
    assert not ready_path(first).exists()
    assert store.keep_ready("r", "main", "k1")
    size = os.stat(first).st_size
    store.limit = 3 * size - 1  # k1 and its unpacked copy, and k2: one byte over
    save("k2")
    assert ["k2.tar", "k2.tree"] == sorted(os.listdir(keys))
    (keys / "orphan.ready" / "ws").mkdir(parents=True)
    save("k3")
    assert not (keys / "orphan.ready").exists()


def test_a_spare_copy_is_made_once_its_build_has_ended(tmp_path: Path):
    source = tmp_path / "source"
    venv(source)
    store = CacheStore(tmp_path / "cache")
    staged = store.staging("r")
    pack(staged, {"ws": source}, {"ws": [".venv"]})
    entry = store.commit("r", "main", "k", staged)
    assert entry is not None and make_tree(entry.path) is not None
    cache_saver.keep_ready_after(7, store, "r", "main", "k")
    assert not ready_path(entry.path).exists()  # not while the build runs
    cache_saver.build_ended(8)  # another build's end: nothing
    cache_saver.wait_for_build(8)
    assert not ready_path(entry.path).exists()
    cache_saver.build_ended(7)
    cache_saver.wait_for_build(7)
    assert listing(tree_path(entry.path)) == listing(ready_path(entry.path))


def test_a_server_that_stops_finishes_the_spare_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Builds run on daemon threads under `sauci serve` (its loop is one),
    and a thread inherits that: the copy's thread must not, or a server that
    stops would leave half a copy behind."""
    store = CacheStore(tmp_path / "cache")
    started, release = threading.Event(), threading.Event()

    def keep_ready(repo: str, branch: str, key: str) -> bool:
        started.set()
        release.wait(10)
        return False

    monkeypatch.setattr(store, "keep_ready", keep_ready)
    cache_saver.keep_ready_after(9, store, "r", "main", "k")
    ender = threading.Thread(target=cache_saver.build_ended, args=(9,), daemon=True)
    ender.start()
    ender.join()
    assert started.wait(10)
    (copier,) = [t for t in threading.enumerate() if t.name == "sauci-cache-ready-9"]
    assert not copier.daemon
    release.set()
    cache_saver.wait_for_build(9)


def test_a_sparse_cache_path_is_not_packed_past_the_limit(tmp_path):
    """Hostile: a step's sparse file costs its workspace nothing; packed, it
    cost the server's disk its whole size before the store refused the
    archive for its size. pack() stops at the limit."""
    from sauci.core.cache_archive import ArchiveError

    source = tmp_path / "ws"
    (source / "dir").mkdir(parents=True)
    (source / "dir" / "small").write_text("x")
    with (source / "dir" / "huge").open("wb") as fh:
        fh.truncate(64 * 1024**3)
    target = tmp_path / "c.tar"
    with pytest.raises(ArchiveError, match="larger than the cache limit"):
        pack(target, {"ws": source}, {"ws": ["dir"]}, limit=1024 * 1024)
    assert target.stat().st_size <= 1024 * 1024
    (source / "dir" / "huge").unlink()
    assert 1 == pack(target, {"ws": source}, {"ws": ["dir"]}, limit=1024 * 1024)
