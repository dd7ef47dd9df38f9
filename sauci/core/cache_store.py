"""Where step caches are kept: ``<data>/cache/steps/<repo>/<branch>/keys/<key>.tar``,
on the disk of the machine that runs the build (the server, or a worker).
``<repo>`` and ``<branch>`` are folder names no other name gets (:func:`folder_name`).

Lookups follow GitHub Actions: the build's own branch first, then the
default branch's entries (read only: a branch never writes another's). The
size cap is per repository; a save that takes the repository over it
deletes the least recently used entries (an entry's mtime is set when it
is saved and each time it is restored, so the file system is the index and
a crash leaves nothing to repair). One lock file per repository orders
saves and evictions between builds and processes. An entry may also be kept
unpacked beside its archive (``<key>.tree``, :mod:`sauci.core.cache_tree`);
that copy counts as much as its archive against the cap and goes with it,
as does its spare linked copy (``<key>.ready``: directories and links to
the tree's files, no data of its own, so not counted).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import time
from collections.abc import Iterator, MutableMapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import attrs

from sauci._logging import get_logger
from sauci.core.cache_tree import link_copy, ready_path, tree_path
from sauci.core.paths import safe_name

if TYPE_CHECKING:
    from sauci.core.models import Build

__all__ = [
    "CACHE_DIR_VARIABLE",
    "DEFAULT_CACHE_LIMIT",
    "CacheEntry",
    "CacheStore",
    "cache_env",
    "folder_name",
]

log = get_logger(__name__)

DEFAULT_CACHE_LIMIT = 2 * 1024**3  # per repository
DEFAULT_BRANCHES = ("main", "master")

# Set by SauCI alone (a pipeline's own value is dropped): the host directory
# that sandboxes bind read-write for pip's and uv's download caches.
CACHE_DIR_VARIABLE = "SAUCI_CACHE_DIR"
_TOOLS = {"PIP_CACHE_DIR": "pip", "UV_CACHE_DIR": "uv"}


def folder_name(name: str) -> str:
    """``name`` (a repository or a branch) as a folder name that no other name
    gets: its readable part and 16 hex digits of its SHA-256.

    The readable part alone (:func:`~sauci.core.paths.safe_name`) gives
    ``_main``, ``main_`` and ``main`` one folder, and ``feature/x`` and
    ``feature_x`` one: whoever could push a branch so named wrote the
    entries, and pip's downloads, that the default branch's builds restore.
    """
    digest = hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    return f"{safe_name(name)[:64]}-{digest}"


@attrs.frozen(kw_only=True)
class CacheEntry:
    """One saved archive."""

    key: str
    branch: str
    path: Path
    size: int
    used: float  # when it was last saved or restored (its mtime)


class CacheStore:
    """The caches of every repository under ``root`` (``<data>/cache/steps``)."""

    def __init__(
        self,
        root: Path,
        *,
        limit: int = DEFAULT_CACHE_LIMIT,
        default_branches: Sequence[str] = DEFAULT_BRANCHES,
    ) -> None:
        self.root = root
        self.limit = limit
        self.default_branches = tuple(default_branches)

    # -- places --------------------------------------------------------------

    def repo_dir(self, repo: str) -> Path:
        return self.root / folder_name(repo)

    def _keys_dir(self, repo: str, branch: str) -> Path:
        return self.repo_dir(repo) / folder_name(branch) / "keys"

    def keys_folder(self, repo: str, branch: str) -> Path:
        """The branch's entries folder, made if missing (only SauCI reads
        entries: the tools/ beside them is what a step's uid may reach,
        through directories it cannot list)."""
        folder = self._keys_dir(repo, branch)
        self.repo_dir(repo).mkdir(mode=0o711, parents=True, exist_ok=True)
        folder.parent.mkdir(mode=0o711, exist_ok=True)
        folder.mkdir(mode=0o700, exist_ok=True)
        return folder

    def tools_dir(self, repo: str, branch: str) -> Path:
        """The download caches of pip and uv for ``repo`` on ``branch``."""
        return self.repo_dir(repo) / folder_name(branch) / "tools"

    # -- lookups -------------------------------------------------------------

    def _entries(self, repo: str, branch: str) -> list[CacheEntry]:
        return _listed(self._keys_dir(repo, branch), branch)

    def find(
        self, repo: str, branch: str, key: str, restore_keys: Sequence[str] = ()
    ) -> tuple[CacheEntry | None, bool]:
        """The entry to restore and whether it is an exact hit: ``key`` on the
        branch, then on a default branch; then each prefix of ``restore_keys``
        in order, newest entry first, on the branch and then a default one."""
        branches = [branch, *(b for b in self.default_branches if b != branch)]
        listed = {b: self._entries(repo, b) for b in branches}
        for b in branches:
            for entry in listed[b]:
                if entry.key == key:
                    return entry, True
        for prefix in restore_keys:
            for b in branches:
                matches = [e for e in listed[b] if e.key.startswith(prefix)]
                if matches:
                    return max(matches, key=lambda e: e.used), False
        return None, False

    def touch(self, entry: CacheEntry) -> None:
        """Mark ``entry`` used now (least recently used goes first)."""
        with contextlib.suppress(FileNotFoundError):
            now = time.time()
            os.utime(entry.path, (now, now))

    # -- saving --------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self, repo: str) -> Iterator[None]:
        folder = self.repo_dir(repo)
        folder.mkdir(mode=0o711, parents=True, exist_ok=True)
        fd = os.open(folder / ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def staging(self, repo: str) -> Path:
        """A fresh file name in the repository's directory to write an archive to."""
        folder = self.repo_dir(repo)
        folder.mkdir(mode=0o711, parents=True, exist_ok=True)
        return folder / f".incoming-{os.getpid()}-{time.monotonic_ns()}.tar"

    def commit(
        self, repo: str, branch: str, key: str, staged: Path, tree: Path | None = None
    ) -> CacheEntry | None:
        """Keep ``staged`` as ``key`` on ``branch`` (and ``tree``, a private
        directory beside the entries, as its unpacked copy), then evict down to
        the limit; None (and both deleted) when it alone is over the limit."""
        size = staged.stat().st_size
        if size > self.limit:
            staged.unlink(missing_ok=True)
            if tree is not None:
                shutil.rmtree(tree, ignore_errors=True)
            return None
        with self._locked(repo):
            target = self.keys_folder(repo, branch) / f"{key}.tar"
            staged.chmod(0o600)
            os.replace(staged, target)
            _remove_copies(target)  # the unpacked copies of what it replaced
            if tree is not None:
                try:
                    os.rename(tree, tree_path(target))
                except OSError:  # one made from the archive meanwhile: as good
                    shutil.rmtree(tree, ignore_errors=True)
            entry = CacheEntry(key=key, branch=branch, path=target, size=size, used=time.time())
            self._evict(repo, keep=target)
        return entry

    def keep_ready(self, repo: str, branch: str, key: str) -> bool:
        """Make the spare linked copy of the entry ``key`` on ``branch``
        (:func:`sauci.core.cache_tree.link_copy`), for its next linked restore
        to take whole; False when there is no unpacked copy to link, or a
        spare is there already. Under the repository's lock, as saves and
        evictions are, so a spare is always of the entry's present files."""
        archive = self._keys_dir(repo, branch) / f"{key}.tar"
        with self._locked(repo):
            return archive.exists() and link_copy(tree_path(archive), ready_path(archive))

    def usage(self, repo: str) -> int:
        """Bytes the repository's caches take (archives and tool caches)."""
        return sum(_footprint(e) for e in self._all(repo)) + sum(
            _tree_size(p) for p in self._tools(repo)
        )

    def _all(self, repo: str) -> list[CacheEntry]:
        folder = self.repo_dir(repo)
        try:
            branches = [d for d in os.listdir(folder) if (folder / d / "keys").is_dir()]
        except FileNotFoundError:
            return []
        # Named by their folders: a folder's branch cannot be told from its name.
        return [e for b in branches for e in _listed(folder / b / "keys", b)]

    def _tools(self, repo: str) -> list[Path]:
        folder = self.repo_dir(repo)
        try:
            return [
                folder / d / "tools" for d in os.listdir(folder) if (folder / d / "tools").is_dir()
            ]
        except FileNotFoundError:
            return []

    def _evict(self, repo: str, keep: Path | None = None) -> None:
        # The folder of the layout before folder_name (its entries are never
        # found again, and would hold their disk for good): removed at a save.
        legacy = self.root / safe_name(repo)
        if legacy != self.repo_dir(repo) and legacy.is_dir() and not legacy.is_symlink():
            shutil.rmtree(legacy, ignore_errors=True)
            log.info("cache_legacy_removed", repo=repo, path=str(legacy))
        entries = sorted(self._all(repo), key=lambda e: e.used)
        self._drop_orphan_trees(repo)
        tools = {p: _tree_size(p) for p in self._tools(repo)}
        total = sum(_footprint(e) for e in entries) + sum(tools.values())
        for entry in entries:
            if total <= self.limit:
                return
            if entry.path == keep:
                continue
            total -= _footprint(entry)
            entry.path.unlink(missing_ok=True)
            _remove_copies(entry.path)
            log.info(
                "cache_evicted", repo=repo, branch=entry.branch, key=entry.key, bytes=entry.size
            )
        # Still over: the download caches go too (pip and uv fill them again).
        for path, size in sorted(tools.items(), key=lambda item: -item[1]):
            if total <= self.limit:
                return
            _clear(path)
            total -= size
            log.info("cache_tools_cleared", repo=repo, path=str(path), bytes=size)

    def _drop_orphan_trees(self, repo: str) -> None:
        """Unpacked (and spare) copies whose archive is gone (a crash between
        the removals)."""
        folder = self.repo_dir(repo)
        with contextlib.suppress(FileNotFoundError):
            for branch in os.listdir(folder):
                keys = folder / branch / "keys"
                with contextlib.suppress(FileNotFoundError, NotADirectoryError):
                    for name in os.listdir(keys):
                        path = keys / name
                        copy = name.endswith((".tree", ".ready"))
                        if copy and not path.with_suffix(".tar").exists():
                            _remove_tree(path)
                        elif name.startswith(".") and _copy_name(name) and _stale(path):
                            shutil.rmtree(path, ignore_errors=True)  # a crash's leftover


def _listed(folder: Path, branch: str) -> list[CacheEntry]:
    """The entries in a branch's ``keys`` folder (``branch``: what to call their branch)."""
    found = []
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return []
    for name in names:
        if not name.endswith(".tar"):
            continue
        try:
            st = os.lstat(folder / name)
        except FileNotFoundError:
            continue
        found.append(
            CacheEntry(
                key=name[:-4],
                branch=branch,
                path=folder / name,
                size=st.st_size,
                used=st.st_mtime,
            )
        )
    return found


def _copy_name(name: str) -> bool:
    """A name an unpacked or spare copy is made or removed under."""
    return ".tree" in name or ".ready" in name


def _stale(path: Path) -> bool:
    """Left over from an unpacking or removal an hour ago or more (a crash)."""
    try:
        return time.time() - os.lstat(path).st_mtime > 3600
    except FileNotFoundError:
        return False


def _footprint(entry: CacheEntry) -> int:
    """What an entry takes on disk: its archive, and as much again when it is
    also kept unpacked (the files' own size, as in the archive)."""
    return entry.size * (2 if tree_path(entry.path).is_dir() else 1)


def _remove_tree(tree: Path) -> None:
    """Remove an unpacked copy; first aside by rename, so that no restore links
    from a half-removed tree (a link of a file removed meanwhile fails, and
    that restore unpacks the archive)."""
    if not tree.is_dir():
        return
    doomed = tree.with_name(f".{tree.name}.gone-{os.getpid()}-{time.monotonic_ns()}")
    try:
        os.rename(tree, doomed)
    except FileNotFoundError:
        return
    shutil.rmtree(doomed, ignore_errors=True)


def _remove_copies(archive: Path) -> None:
    """Remove the entry's spare linked copy, then its unpacked copy."""
    _remove_tree(ready_path(archive))
    _remove_tree(tree_path(archive))


def _tree_size(path: Path) -> int:
    total = 0
    for dirpath, _, files, dir_fd in os.fwalk(path, follow_symlinks=False):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_blocks * 512
        del dirpath
    return total


def _clear(path: Path) -> None:
    """Empty ``path`` but keep it (a running step may have it bound)."""
    for child in path.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


def cache_env(
    env: MutableMapping[str, str], store: CacheStore | None, build: Build
) -> MutableMapping[str, str]:
    """Point pip and uv at the repository's download cache (unless the
    pipeline set its own) and name the directory for the sandbox to bind."""
    env.pop(CACHE_DIR_VARIABLE, None)  # a pipeline never chooses a host directory
    if store is None:
        return env
    tools = store.tools_dir(build.repo, build.branch or "detached")
    try:
        for sub in (*_TOOLS.values(), ""):
            (tools / sub).mkdir(parents=True, exist_ok=True)
        # Sandboxes that run steps as another uid must walk to it (no listing).
        for parent in (store.root, store.repo_dir(build.repo), tools.parent):
            parent.chmod(0o711)
    except OSError as exc:
        log.warning("cache_tools_unavailable", path=str(tools), error=str(exc))
        return env
    env[CACHE_DIR_VARIABLE] = str(tools)
    for variable, sub in _TOOLS.items():
        env.setdefault(variable, str(tools / sub))
    return env
