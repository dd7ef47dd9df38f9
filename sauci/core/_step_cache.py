"""A step's cache around its run: restored before it, saved after it passes,
and the per-repository download caches of pip and uv in its environment.

The server (or worker) does the restoring and saving itself, in the
workspace on its own disk, before and after the sandbox runs the step, so
it works the same in every sandbox. What happened is written in the step's
log and summed up in one line for the step's reason (page and ``sauci show``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Callable, MutableMapping
from pathlib import Path

import attrs

from sauci._logging import get_logger
from sauci.core.cache_archive import ArchiveError, pack, unpack
from sauci.core.cache_key import CacheKeyError, render_key
from sauci.core.cache_saver import keep_ready_after, save_linked, wait_for_key
from sauci.core.cache_store import CACHE_DIR_VARIABLE, CacheEntry, CacheStore, cache_env
from sauci.core.cache_tree import link_tree, make_tree
from sauci.core.models import Build, Step

__all__ = [
    "CACHE_DIR_VARIABLE",
    "CACHE_HIT_VARIABLE",
    "CacheState",
    "cache_env",
    "restore_cache",
    "save_cache",
    "skip_run",
]

log = get_logger(__name__)

# "true" in the step's environment when its cache key was restored exactly.
CACHE_HIT_VARIABLE = "SAUCI_CACHE_HIT"


@attrs.frozen(kw_only=True)
class CacheState:
    """What the cache did for one step; ``note`` sums it up."""

    key: str | None = None
    hit: bool = False  # the exact key was restored: nothing to save
    restored: CacheEntry | None = None
    saved: int | None = None  # bytes
    problem: str | None = None
    skipped: bool = False  # skip_on_hit: the run was skipped
    # The paths restored as hard links to the entry's unpacked copy.
    linked: tuple[Path, ...] = ()

    @property
    def note(self) -> str | None:
        if self.key is None:
            return f"cache: {self.problem}" if self.problem else None
        if self.hit and self.restored is not None:
            hit = f"cache hit {self.key} ({_size(self.restored.size)})"
            return f"{hit}; run skipped (skip_on_hit)" if self.skipped else hit
        parts = [f"cache miss {self.key}"]
        if self.restored is not None:
            parts.append(f"restored {self.restored.key} ({_size(self.restored.size)})")
        if self.saved is not None:
            parts.append(f"saved {_size(self.saved)}")
        if self.problem:
            parts.append(self.problem)
        return "; ".join(parts)


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n:.1f} GiB"


def _roots(
    workspace: Path, env: MutableMapping[str, str], own_home: Path | None = None
) -> dict[str, Path]:
    """Where ``ws/`` and ``home/`` members go. HOME only when it is the build's
    own: ``own_home`` (the sandbox's per-build HOME, on the host), or a HOME
    inside the workspace; the host's HOME is never written from a cache."""
    roots = {"ws": workspace}
    if own_home is not None:
        roots["home"] = own_home
        return roots
    home = env.get("HOME")
    if home:
        with contextlib.suppress(OSError, ValueError):
            resolved = Path(os.path.realpath(home))
            if resolved.is_relative_to(os.path.realpath(workspace)):
                roots["home"] = resolved
    return roots


def _split(paths: tuple[str, ...]) -> dict[str, list[str]]:
    split: dict[str, list[str]] = {"ws": [], "home": []}
    for path in paths:
        if path.startswith("~/"):
            split["home"].append(path[2:])
        else:
            split["ws"].append(path)
    return split


def restore_cache(
    store: CacheStore,
    build: Build,
    step: Step,
    workspace: Path,
    env: MutableMapping[str, str],
    write: Callable[[str], None],
    home: Path | None = None,
    link: bool = False,
) -> CacheState:
    """Unpack the best entry for the step's key into the workspace (and
    ``home``, the build's own HOME when its sandbox gives it one). ``link``:
    the step's sandbox cannot write into files it does not own (see
    :mod:`sauci.core.cache_tree`), so an exact hit of a ``skip_on_hit`` key
    is restored as hard links to the entry's unpacked copy. The step's
    environment says whether the exact key was restored (``CACHE_HIT_VARIABLE``,
    what actions/cache calls ``cache-hit``)."""
    state = _restore(store, build, step, workspace, env, write, home, link)
    env[CACHE_HIT_VARIABLE] = "true" if state.hit else "false"
    return state


def _restore(
    store: CacheStore,
    build: Build,
    step: Step,
    workspace: Path,
    env: MutableMapping[str, str],
    write: Callable[[str], None],
    home: Path | None,
    link: bool,
) -> CacheState:
    cache = step.cache
    assert cache is not None
    try:
        key = render_key(cache.key, workspace, step.matrix)
    except (CacheKeyError, OSError) as exc:
        write(f"sauci: cache: not used: {exc}\n")
        return CacheState(problem=f"not used: {exc}")
    roots = _roots(workspace, env, home)
    skipped = [p for p in cache.paths if p.startswith("~/")] if "home" not in roots else []
    if skipped:
        write(f"sauci: cache: {', '.join(skipped)} skipped: the build's HOME is not its own\n")
    waited = wait_for_key(store, build.repo, key)
    if waited >= 0.05:
        write(f"sauci: cache: waited {waited:.1f} s for the save of {key} under way\n")
    try:
        entry, exact = store.find(build.repo, build.branch or "detached", key, cache.restore_keys)
    except OSError as exc:
        write(f"sauci: cache: not restored: {exc}\n")
        return CacheState(key=key, problem=f"not restored: {exc}")
    if entry is None:
        write(f"sauci: cache: miss for {key}\n")
        return CacheState(key=key)
    started = time.monotonic()
    linked = _linked(entry, roots) if link and exact and cache.skip_on_hit else ()
    try:
        if not linked:
            unpack(entry.path, roots)
    except (ArchiveError, OSError) as exc:
        write(f"sauci: cache: {entry.key} not restored: {exc}\n")
        log.warning("cache_restore_failed", repo=build.repo, key=entry.key, error=str(exc))
        return CacheState(key=key, problem=f"not restored: {exc}")
    store.touch(entry)
    if linked:  # the next hit takes a spare copy made after this build
        keep_ready_after(build.id, store, build.repo, entry.branch, entry.key)
    seconds = time.monotonic() - started
    what = "hit" if exact else f"miss for {key}, restored {entry.key}"
    how = "linked in" if linked else "in"
    write(f"sauci: cache: {what} ({_size(entry.size)} {how} {seconds:.1f} s)\n")
    return CacheState(key=key, hit=exact, restored=entry, linked=linked)


def _linked(entry: CacheEntry, roots: dict[str, Path]) -> tuple[Path, ...]:
    """Restore ``entry`` as hard links to its unpacked copy (made now if
    missing): the paths linked in; none when it was not done."""
    tree = make_tree(entry.path)
    return tuple(link_tree(tree, roots) or ()) if tree is not None else ()


def _unlink_restored(state: CacheState, roots: dict[str, Path]) -> None:
    """Replace the linked paths with an unpacked copy: the step is to run after
    all, and it may write into them."""
    if not state.linked or state.restored is None:
        return
    for path in state.linked:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif os.path.lexists(path):
            path.unlink()
    unpack(state.restored.path, roots)


def save_cache(
    store: CacheStore,
    state: CacheState,
    build: Build,
    step: Step,
    workspace: Path,
    env: MutableMapping[str, str],
    write: Callable[[str], None],
    home: Path | None = None,
    link: bool = False,
    owner: int | None = None,
) -> CacheState:
    """Pack the step's cache paths under its key, unless the key was a hit.
    ``link`` (as for :func:`restore_cache`): a ``skip_on_hit`` entry is also
    kept unpacked, so that its first hit is already a tree of links; with
    ``owner``, the step's host uid, that copy is made from the workspace
    as links and the archive after the step (:mod:`sauci.core.cache_saver`)."""
    cache = step.cache
    if cache is None or state.key is None or state.hit:
        return state
    started = time.monotonic()
    if link and cache.skip_on_hit and owner is not None:
        branch = build.branch or "detached"
        roots, paths = _roots(workspace, env, home), _split(cache.paths)
        size = save_linked(store, build.repo, branch, state.key, build.id, roots, paths, owner)
        if size is not None:
            keep_ready_after(build.id, store, build.repo, branch, state.key)
            seconds = time.monotonic() - started
            write(
                f"sauci: cache: saved {state.key} ({_size(size)} linked in {seconds:.1f} s; "
                "its archive is written after the step)\n"
            )
            return attrs.evolve(state, saved=size)
    staged: Path | None = None
    try:
        staged = store.staging(build.repo)
        if not pack(staged, _roots(workspace, env, home), _split(cache.paths), limit=store.limit):
            staged.unlink(missing_ok=True)
            write("sauci: cache: nothing to save (no cache path exists)\n")
            return attrs.evolve(state, problem="nothing to save")
        entry = store.commit(build.repo, build.branch or "detached", state.key, staged)
    except (ArchiveError, OSError) as exc:
        if staged is not None:
            staged.unlink(missing_ok=True)
        write(f"sauci: cache: not saved: {exc}\n")
        return attrs.evolve(state, problem=f"not saved: {exc}")
    if entry is None:
        write(f"sauci: cache: not saved: larger than the cache limit ({_size(store.limit)})\n")
        return attrs.evolve(state, problem="not saved: over the cache limit")
    if link and cache.skip_on_hit:
        make_tree(entry.path)
    seconds = time.monotonic() - started
    write(f"sauci: cache: saved {state.key} ({_size(entry.size)} in {seconds:.1f} s)\n")
    return attrs.evolve(state, saved=entry.size)


def _broken(path: str, hidden: tuple[str, ...]) -> bool:
    """Whether the link ``path`` points nowhere the step can reach: its target
    is gone, or under a host path its sandbox hides (never looked at, so
    that skipping tells a pipeline nothing about what is there)."""
    target = os.path.normpath(os.path.join(os.path.dirname(path), os.readlink(path)))
    workspace, *hide = hidden or ("",)
    # Under the workspace (hidden[0]) is what the step sees.
    if not _under(target, workspace) and any(_under(target, h) for h in hide):
        return True
    return not os.path.exists(path)


def _under(path: str, folder: str) -> bool:
    return bool(folder) and (path == folder or path.startswith(folder.rstrip("/") + "/"))


def _dangling(root: Path, relative: str, hidden: tuple[str, ...]) -> str | None:
    """The first symlink under ``root/relative`` that is broken (a venv's
    ``bin/python`` once its interpreter moved), as a relative path."""
    top = root / relative
    if top.is_symlink():
        return relative if _broken(str(top), hidden) else None
    # The kind of each entry comes with its listing (no lstat per file: a
    # venv is some 2,700 of them, and only a handful are links).
    folders = [str(top)]
    while folders:
        try:
            listing = os.scandir(folders.pop())
        except OSError:  # not a directory, gone, unreadable: nothing to look at
            continue
        with listing:
            for entry in listing:
                if entry.is_symlink():
                    if _broken(entry.path, hidden):
                        return os.path.relpath(entry.path, root)
                elif entry.is_dir(follow_symlinks=False):
                    folders.append(entry.path)
    return None


def skip_run(
    state: CacheState,
    step: Step,
    workspace: Path,
    env: MutableMapping[str, str],
    write: Callable[[str], None],
    home: Path | None = None,
    hidden: tuple[str, ...] = (),
) -> CacheState:
    """``state`` marked skipped when the step asks to skip its run on an exact
    hit and what came back is whole. A partial (restore key) hit, a miss or a
    restore that failed runs the step; so does a restored link that points
    nowhere (the interpreter a venv was made with moved): the step then runs
    and saves its result again under the same key. ``hidden``: the
    workspace, then host paths the step's sandbox hides (a link into them,
    outside the workspace, counts as broken)."""
    cache = step.cache
    if cache is None or not cache.skip_on_hit or not state.hit:
        return state
    roots = _roots(workspace, env, home)
    for name, paths in _split(cache.paths).items():
        root = roots.get(name)
        for relative in paths if root is not None else ():
            try:
                broken = _dangling(root, relative, hidden)  # type: ignore[arg-type]
            except OSError as exc:
                broken = f"{relative} ({exc})"
            if broken is not None:
                write(f"sauci: cache: {broken} points nowhere; running the step\n")
                try:
                    _unlink_restored(state, roots)
                except (ArchiveError, OSError) as exc:
                    write(f"sauci: cache: not restored: {exc}\n")
                problem = f"{broken} points nowhere"
                return attrs.evolve(state, hit=False, problem=problem, linked=())
    write("sauci: cache: exact hit; the run is skipped (skip_on_hit)\n")
    return attrs.evolve(state, skipped=True)
