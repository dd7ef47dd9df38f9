"""Saving a step's cache off the build's path, where its unpacked copy can be
made from the workspace as hard links (:func:`sauci.core.cache_tree.snapshot`).

When the step ends, its cache paths are linked into a private directory
beside the entries (tens of milliseconds for a venv; nothing is copied) and
the step is done. The archive is then written from that copy by a thread of
this process, while the build goes on and after it ends; both are kept
under the key together, under the repository's lock (the archive by
``os.replace``, its unpacked copy by ``rename``), so another build sees a
whole entry or none (a clean miss), never a part. A build of this process
that looks the same key up meanwhile waits for the save to end
(:func:`wait_for_key`), and a library call (``run_pipeline``) returns only
once its build's saves have ended (:func:`wait_for_build`). A save that
fails is logged (``cache_save_failed``); the key then misses.

The thread is not a daemon: a server that stops finishes its saves first.

A linked restore or save also asks for the entry's spare linked copy
(:meth:`CacheStore.keep_ready`), which the next hit takes with one rename:
it is made by a thread once the build has ended (:func:`build_ended`),
after the save of its key, so that no build waits for it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import attrs

from sauci._logging import get_logger
from sauci.core.cache_archive import MARK, ArchiveError, gnu_tar, pack
from sauci.core.cache_store import CacheStore
from sauci.core.cache_tree import snapshot

__all__ = ["build_ended", "keep_ready_after", "save_linked", "wait_for_build", "wait_for_key"]

log = get_logger(__name__)

WAIT_LIMIT = 600.0  # seconds: as long as an archive may take (tar's own timeout)


@attrs.frozen(eq=False)
class _Save:
    build: int
    done: threading.Event = attrs.field(factory=threading.Event)


# This process's saves under way, by (repository folder, key).
_PENDING: dict[tuple[str, str], list[_Save]] = {}
_GUARD = threading.Lock()
# Entries whose spare linked copy a build asked for: (store, repo, branch, key).
_READY: dict[int, list[tuple[CacheStore, str, str, str]]] = {}


def save_linked(
    store: CacheStore,
    repo: str,
    branch: str,
    key: str,
    build: int,
    roots: Mapping[str, Path],
    paths: Mapping[str, Sequence[str]],
    owner: int,
) -> int | None:
    """Make the entry's unpacked copy now and its archive in the background:
    the bytes saved; None when the copy cannot be made as links, or no
    cache path exists (the caller saves the usual way, or says so)."""
    stage = Path(tempfile.mkdtemp(prefix=f".{key}.tree-", dir=store.keys_folder(repo, branch)))
    try:
        size = snapshot(stage, roots, paths, owner)
    except (ArchiveError, OSError, subprocess.SubprocessError) as exc:
        log.info("cache_snapshot_failed", repo=repo, key=key, error=str(exc))
        size = None
    # Over the limit (a sparse file costs the copy nothing, its archive its
    # size): the usual way then, which stops writing at the limit.
    if size is None or size > store.limit or not _members(stage, paths):
        shutil.rmtree(stage, ignore_errors=True)
        return None
    save = _Save(build)
    slot = (str(store.repo_dir(repo)), key)
    with _GUARD:
        _PENDING.setdefault(slot, []).append(save)
    thread = threading.Thread(
        target=_archive,
        args=(store, repo, branch, key, stage, paths, save, slot),
        name=f"sauci-cache-save-{key[:40]}",
        daemon=False,  # started from a build's thread, a daemon under serve
    )
    thread.start()
    return size


def _archive(
    store: CacheStore,
    repo: str,
    branch: str,
    key: str,
    stage: Path,
    paths: Mapping[str, Sequence[str]],
    save: _Save,
    slot: tuple[str, str],
) -> None:
    started = time.monotonic()
    staged: Path | None = None
    try:
        staged = store.staging(repo)
        write_archive(stage, staged, paths)
        entry = store.commit(repo, branch, key, staged, tree=stage)
        if entry is None:
            log.warning("cache_save_failed", repo=repo, key=key, error="over the cache limit")
        else:
            seconds = round(time.monotonic() - started, 3)
            log.info("cache_saved", repo=repo, key=key, bytes=entry.size, seconds=seconds)
    except (ArchiveError, OSError, subprocess.SubprocessError) as exc:
        log.warning("cache_save_failed", repo=repo, key=key, error=str(exc))
        if staged is not None:
            staged.unlink(missing_ok=True)
    finally:
        shutil.rmtree(stage, ignore_errors=True)  # gone already once kept
        _done(save, slot)


def _done(save: _Save, slot: tuple[str, str]) -> None:
    with _GUARD:
        saves = _PENDING.get(slot, [])
        if save in saves:
            saves.remove(save)
        if not saves:
            _PENDING.pop(slot, None)
    save.done.set()


def keep_ready_after(build: int, store: CacheStore, repo: str, branch: str, key: str) -> None:
    """Have the spare linked copy of the entry ``key`` made once ``build`` ends."""
    with _GUARD:
        _READY.setdefault(build, []).append((store, repo, branch, key))


def build_ended(build: int) -> None:
    """``build`` has ended: make the spare copies it asked for, in a thread
    (:func:`wait_for_build` waits for it, :func:`wait_for_key` does not: a
    restore meanwhile links from the tree)."""
    with _GUARD:
        wanted = _READY.pop(build, [])
        if not wanted:
            return
        save, slot = _Save(build), ("", f"ready-{build}")
        _PENDING.setdefault(slot, []).append(save)
    # Not a daemon, though started from the build's thread (which may be one):
    # a server that stops finishes the copy rather than leave half of it.
    threading.Thread(
        target=_make_ready,
        args=(wanted, save, slot),
        name=f"sauci-cache-ready-{build}",
        daemon=False,
    ).start()


def _make_ready(
    wanted: Sequence[tuple[CacheStore, str, str, str]], save: _Save, slot: tuple[str, str]
) -> None:
    try:
        for store, repo, branch, key in dict.fromkeys(wanted):
            wait_for_key(store, repo, key)  # its archive, written after a linked save
            try:
                store.keep_ready(repo, branch, key)
            except OSError as exc:
                log.info("cache_ready_failed", repo=repo, key=key, error=str(exc))
    finally:
        _done(save, slot)


def write_archive(stage: Path, target: Path, paths: Mapping[str, Sequence[str]]) -> None:
    """The archive of the unpacked copy ``stage`` (members ``ws/<path>`` and
    ``home/<path>``), as :func:`sauci.core.cache_archive.pack` writes it:
    marked as SauCI's, no owners, no set-id bits (the copy has none), its
    files writable by their owner again (the copy's are read-only)."""
    members = _members(stage, paths)
    tar = gnu_tar()
    if tar is None:
        roots = {name: stage / name for name in paths}
        if not pack(target, roots, paths):
            raise ArchiveError("nothing to archive")
        return
    done = subprocess.run(
        [
            tar,
            "-cf",
            str(target),
            "-C",
            str(stage),
            "--format=pax",
            f"--pax-option={MARK}=1,delete=atime,delete=ctime",
            "--owner=0",
            "--group=0",
            "--numeric-owner",
            "--mode=u+w",
            "--sort=name",
            "--",
            *members,
        ],
        capture_output=True,
        timeout=WAIT_LIMIT,
        check=False,
    )
    if done.returncode != 0:
        raise ArchiveError(f"tar: {done.stderr.decode(errors='replace')[-300:].strip()}")


def _members(stage: Path, paths: Mapping[str, Sequence[str]]) -> list[str]:
    """The cache paths in ``stage``, as archive member names."""
    names = [f"{name}/{relative.strip('/')}" for name, rel in paths.items() for relative in rel]
    return [name for name in names if os.path.lexists(stage / name)]


def wait_for_key(store: CacheStore, repo: str, key: str) -> float:
    """Wait until this process's saves of ``key`` for ``repo`` have ended;
    the seconds waited."""
    with _GUARD:
        saves = list(_PENDING.get((str(store.repo_dir(repo)), key), ()))
    return _wait(saves)


def wait_for_build(build: int) -> float:
    """Wait until the saves ``build`` started have ended; the seconds waited."""
    with _GUARD:
        saves = [s for pending in _PENDING.values() for s in pending if s.build == build]
    return _wait(saves)


def _wait(saves: Sequence[_Save]) -> float:
    started = time.monotonic()
    for save in saves:
        save.done.wait(max(0.0, WAIT_LIMIT - (time.monotonic() - started)))
    return time.monotonic() - started
