"""The cache store: exact keys, then restore-key prefixes newest first; the
default branch's entries as a fallback; least recently used entries evicted
under the per-repository limit."""

from __future__ import annotations

import os
import time
from pathlib import Path

from sauci.core.cache_store import CacheStore


def _save(store: CacheStore, branch: str, key: str, size: int, used: float | None = None):
    staged = store.staging("repo")
    staged.write_bytes(b"x" * size)
    entry = store.commit("repo", branch, key, staged)
    if entry is not None and used is not None:
        os.utime(entry.path, (used, used))
    return entry


def test_exact_key_then_prefixes_newest_first(tmp_path: Path):
    store = CacheStore(tmp_path)
    now = time.time()
    _save(store, "dev", "venv-old", 10, now - 100)
    _save(store, "dev", "venv-new", 10, now - 10)
    entry, exact = store.find("repo", "dev", "venv-new")
    assert (entry is not None and entry.key, exact) == ("venv-new", True)
    entry, exact = store.find("repo", "dev", "venv-none", ["venv-"])
    assert (entry is not None and entry.key, exact) == ("venv-new", False)
    assert (None, False) == store.find("repo", "dev", "other", ["x-"])


def test_a_branch_falls_back_to_the_default_branch_but_never_to_a_sibling(tmp_path: Path):
    store = CacheStore(tmp_path)
    _save(store, "main", "venv-1", 10)
    _save(store, "feature", "venv-2", 10)
    entry, exact = store.find("repo", "other", "venv-1")
    assert (entry is not None and entry.branch, exact) == ("main", True)
    entry, _ = store.find("repo", "other", "venv-3", ["venv-"])
    assert entry is not None and entry.branch == "main"


def test_least_recently_used_entries_go_first_under_the_limit(tmp_path: Path):
    store = CacheStore(tmp_path, limit=250)
    now = time.time()
    _save(store, "main", "a", 100, now - 300)
    _save(store, "main", "b", 100, now - 200)
    a, _ = store.find("repo", "main", "a")
    assert a is not None
    store.touch(a)  # restored: now the most recently used
    _save(store, "main", "c", 100)
    keys = sorted(e.key for e in store._all("repo"))
    assert ["a", "c"] == keys
    assert 200 == store.usage("repo")


def test_an_entry_over_the_limit_is_not_kept(tmp_path: Path):
    store = CacheStore(tmp_path, limit=50)
    assert _save(store, "main", "big", 100) is None
    assert [] == store._all("repo")
    assert [] == [p for p in store.repo_dir("repo").iterdir() if p.name.endswith(".tar")]


def test_tool_caches_count_and_are_cleared_last(tmp_path: Path):
    store = CacheStore(tmp_path, limit=20_000)
    tools = store.tools_dir("repo", "main") / "pip"
    tools.mkdir(parents=True)
    (tools / "wheel").write_bytes(b"x" * 16_384)
    _save(store, "main", "a", 8_000)  # over: the archive is kept, the downloads go
    assert ["a"] == [e.key for e in store._all("repo")]
    assert not (tools / "wheel").exists()


def test_entries_are_private(tmp_path: Path):
    store = CacheStore(tmp_path)
    entry = _save(store, "main", "k", 10)
    assert entry is not None
    assert 0o600 == entry.path.stat().st_mode & 0o777
    assert 0o700 == entry.path.parent.stat().st_mode & 0o777


def test_a_branch_whose_name_only_looks_like_the_default_one_cannot_fill_its_cache(
    tmp_path: Path,
):
    """Branch and repository names are folders that no other name gets: a
    pusher of `_main` or `main_` (the same folder as `main` once unsafe
    characters were replaced) wrote entries, and pip's downloads, that main's
    builds restored."""
    store = CacheStore(tmp_path)
    for branch in ("_main", "main_", "main."):
        _save(store, branch, "venv-1", 10)
        assert store.tools_dir("repo", branch) != store.tools_dir("repo", "main")
    entry, _ = store.find("repo", "main", "venv-1", ["venv-"])
    assert entry is None
    assert store.repo_dir("group/sub/proj.git") != store.repo_dir("group/sub_proj.git")
    assert store.tools_dir("repo", "feature/x") != store.tools_dir("repo", "feature_x")


def test_a_save_removes_the_repositorys_folder_of_the_layout_before(tmp_path: Path):
    """Entries under the old folder name are never found again: left, they
    would hold their disk (up to the limit) for good."""
    old = tmp_path / "repo" / "main" / "keys"
    old.mkdir(parents=True)
    (old / "venv-0.tar").write_bytes(b"x" * 10)
    store = CacheStore(tmp_path)
    _save(store, "main", "venv-1", 10)
    assert not (tmp_path / "repo").exists()
    assert ["venv-1"] == [e.key for e in store._all("repo")]
