"""Reused workspaces: checkout slots that one build at a time holds, tidied between builds.

A server (or worker) does not make a worktree per build: it keeps slots,
``<workspaces>/<repo id>-w<N>``, each a worktree of the repository, held with
an flock for as long as a build uses it, so two builds (threads or
processes) never share one and a crashed holder's lock goes with its
process.

A slot is made exactly the tree of the build's commit with ``git clean
-ffdx`` and ``git checkout --force --detach``. Where that happens:

- ``lease.release(tidy=True)`` (what the runner calls when a build is over)
  does it in the background, still holding the slot, with the commit just
  built, then writes that sha into the slot's lock file and lets go. The
  next build that takes the slot finds it clean: nothing to do if it builds
  the same commit, one ``checkout`` if not, and no git process at all
  before its first step in the common case of a branch built again.
- Otherwise (no note, or one that does not match the slot's HEAD) the reset
  happens when the slot is taken, as before: the clean starts in
  :func:`reserve`, beside the caller's commit lookup.

The note is wiped the moment a build takes the slot, so a build that dies
half-way leaves none; a slot whose reset fails (a crashed build's
``index.lock``, a deleted directory) is made again from scratch. A build
that finds no free slot waits for one being tidied when this process tidies
more slots than its builds hold (so builds one after another keep to one
slot); otherwise it makes a slot, so builds side by side may use one more
slot each while theirs are tidied.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from sauci._logging import get_logger
from sauci.exceptions import SourceError
from sauci.source.gitcmd import GitCommand, is_full_sha
from sauci.source.gitrepo import repo_id

__all__ = ["Lease", "remove_slots", "reserve", "tidy_in_background", "wait_for_tidying"]


class SlotRepository(Protocol):
    """What a slot needs of its repository: :class:`sauci.source.git.GitSource`,
    which reserves its workspaces here (so this module does not import it)."""

    @property
    def repo(self) -> Path: ...

    @property
    def common_dir(self) -> Path: ...

    def checkout(self, sha: str, dest: Path) -> Path: ...

    def remove(self, dest: Path) -> None: ...


log = get_logger(__name__)

# How long a build waits for a slot being tidied before it makes one.
TIDY_WAIT = 60.0

_slot_names: dict[Path, str] = {}
# In this process, per family of slots (``<root>/<repo id>``): the slots
# being tidied and how many slots builds hold.
_tidying: dict[Path, tuple[Path, threading.Event]] = {}
_held: dict[Path, int] = {}
_guard = threading.Lock()


def reserve(source: SlotRepository, root: Path) -> Lease:
    """Hold a free workspace slot of ``source`` under ``root``; ``lease.reset(sha)``
    then makes it the commit's tree (see the module's docstring)."""
    root.mkdir(parents=True, exist_ok=True)
    base = _slot_names.get(source.repo)
    if base is None:  # repo_id resolves the path: once per repository
        base = _slot_names[source.repo] = repo_id(source.repo)
    family = root / base
    slot = 0
    waited = False
    while True:
        dest = root / f"{base}-w{slot}"
        fd = os.open(root / f".{dest.name}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            slot += 1
            continue
        except BaseException:
            os.close(fd)
            raise
        if not dest.exists() and not waited and (tidy := _tidy_to_wait_for(family)):
            os.close(fd)  # rather than make a slot, wait for one almost ready
            tidy.wait(TIDY_WAIT)  # bounded: a tidy stuck in git makes a slot instead
            waited = True
            slot = 0
            continue
        try:
            lease = Lease(source, dest, fd, clean_at=_take_note(fd), family=family)
        except BaseException:
            os.close(fd)  # also releases the flock
            raise
        with _guard:
            _held[family] = _held.get(family, 0) + 1
        return lease


def _tidy_to_wait_for(family: Path) -> threading.Event | None:
    """A tidy to wait for instead of making a new slot: when more slots are
    being tidied than builds hold (one build after another keeps to one
    slot; builds running side by side get a spare each while theirs are tidied)."""
    with _guard:
        tidying = [done for fam, done in _tidying.values() if fam == family]
        if len(tidying) > _held.get(family, 0):
            return tidying[0]
    return None


# The note: a sha, or as many dashes (wiped); written in place, never truncated.
_NOTE_SIZE = 40


def _take_note(fd: int) -> str | None:
    """The sha a tidy left the slot clean at, wiped as it is read (the build
    that now holds the slot will change it)."""
    note = os.pread(fd, _NOTE_SIZE, 0).decode("ascii", "replace")
    if not is_full_sha(note):
        return None
    os.pwrite(fd, b"-" * _NOTE_SIZE, 0)
    return note


def _leave_note(fd: int, sha: str) -> None:
    os.pwrite(fd, sha.encode("ascii"), 0)


def tidy_in_background(path: Path, tidy: Callable[[], None]) -> None:
    """Run ``tidy`` (the clean-up of the workspace at ``path``, which no build
    holds any more) on a thread, so that the build's slot is free now;
    :func:`wait_for_tidying` waits for it too."""
    done = threading.Event()
    with _guard:
        _tidying[path] = (path, done)  # a family of its own: no slot waits for it

    def run() -> None:
        try:
            tidy()
        except (SourceError, OSError) as exc:
            log.info("workspace_tidy_failed", workspace=str(path), error=str(exc))
        finally:
            with _guard:
                _tidying.pop(path, None)
            done.set()

    threading.Thread(target=run, name="sauci-tidy", daemon=True).start()


def wait_for_tidying(timeout: float | None = None) -> bool:
    """Wait until the slots being tidied in the background are handed back
    (True), or ``timeout`` seconds (False)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    with _guard:
        pending = [done for _fam, done in _tidying.values()]
    for done in pending:
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        if not done.wait(left):
            return False
    return True


def remove_slots(repo: Path | str, root: Path, source: SlotRepository | None = None) -> list[Path]:
    """Delete the free workspace slots of ``repo`` under ``root`` (for a
    repository that is no longer built); a slot a build holds is left.
    ``source`` (the repository's GitSource) removes their worktree entries;
    None (the repository itself is gone) deletes the directories alone.
    Returns the slots removed."""
    base = repo_id(repo)
    removed: list[Path] = []
    for lock_path in sorted(root.glob(f".{base}-w*.lock")):
        dest = root / lock_path.name[1 : -len(".lock")]
        if not re.fullmatch(r"\d+", dest.name[len(base) + 2 :]):
            continue
        fd = os.open(lock_path, os.O_RDWR | os.O_CLOEXEC)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a build (or its tidy) holds it
            if source is not None and dest.exists():
                source.remove(dest)
            elif dest.exists():
                shutil.rmtree(dest, ignore_errors=True)
            lock_path.unlink(missing_ok=True)
            removed.append(dest)
        finally:
            os.close(fd)
    return removed


class Lease:
    """A workspace slot held by one build (see :func:`reserve`).

    :meth:`release` hands it back; its files stay until the next build resets it.
    """

    def __init__(
        self,
        source: SlotRepository,
        path: Path,
        handle: int,
        *,
        clean_at: str | None = None,
        family: Path | None = None,
    ) -> None:
        self.source = source
        self.path = path
        self._family = family
        self._handle: int | None = handle  # the lock file's descriptor, flock held
        self._admin = self._registered()
        self._sha: str | None = None  # what reset() checked out
        self._clean_at = clean_at if clean_at and self._head() == clean_at else None
        self._clean: GitCommand | None = None
        if self._clean_at is None:
            self._start_clean()

    def _registered(self) -> Path | None:
        """The slot's directory in the repository's ``worktrees/``, when git has
        the slot as a worktree at this path; None when it must be made anew.

        Everything comes from the repository, nothing from the slot: a step
        may have rewritten the slot's ``.git`` (a sandboxed one too, to have
        its own git config run outside the sandbox on the next reset).
        """
        path = self.path
        try:
            if path.is_symlink() or not path.is_dir():
                return None
            admin = self.source.common_dir / "worktrees" / path.name
            recorded = (admin / "gitdir").read_text().strip()
        except OSError:
            return None
        if os.path.realpath(recorded) != os.path.realpath(path / ".git"):
            return None
        return admin

    def _head(self) -> str | None:
        """The sha the slot's worktree has checked out (detached), from the repository."""
        if self._admin is None:
            return None
        try:
            return (self._admin / "HEAD").read_text().strip()
        except OSError:
            return None

    def _start_clean(self) -> None:
        # Cleaning first and checking out after leaves what checking out
        # first and cleaning after would: the tree at the sha and nothing else.
        if self._admin is not None:
            self._clean = self._git_command("clean", "-ffdxq")

    def _git_command(self, *args: str) -> GitCommand:
        # The slot's own .git and the git config a step could have planted
        # there are never read: git gets both directories explicitly (and
        # does not refuse a workspace a sandbox gave to another uid).
        assert self._admin is not None
        return GitCommand(
            ["--git-dir", str(self._admin), "--work-tree", str(self.path), *args],
            cwd=self.source.repo,
        )

    def _wait_clean(self) -> bool:
        """True when the slot was cleaned (False: none to clean, or it failed)."""
        clean, self._clean = self._clean, None
        if clean is None:
            return False
        try:
            clean.result()
        except SourceError as exc:
            log.info("workspace_reset_failed", workspace=str(self.path), error=str(exc))
            return False
        return True

    def _checkout(self, sha: str) -> None:
        self._git_command("checkout", "--quiet", "--force", "--detach", sha).result()
        self._restore_git_file()

    def reset(self, sha: str) -> Path:
        """Make the workspace exactly the tree of ``sha``; returns its path."""
        dest = self.path
        clean_at, self._clean_at = self._clean_at, None
        if clean_at is not None:  # tidied after its last build: clean already
            if self._reuse(sha, checkout=sha != clean_at):
                return dest
            self._start_clean()
        if self._wait_clean() and self._reuse(sha, checkout=True):
            return dest
        source = self.source
        try:
            source.checkout(sha, dest)
        except SourceError:
            # e.g. git still lists a slot whose directory was deleted: forget it, once.
            source.remove(dest)
            source.checkout(sha, dest)
        self._admin = self._registered()
        self._sha = sha
        return dest

    def _reuse(self, sha: str, *, checkout: bool) -> bool:
        """Make the clean slot the tree of ``sha`` (``checkout`` False: it is already);
        False, logged, when that fails."""
        try:
            if checkout:
                self._checkout(sha)
            else:
                self._restore_git_file()
        except (SourceError, OSError) as exc:
            log.info("workspace_reset_failed", workspace=str(self.path), error=str(exc))
            return False
        self._sha = sha
        return True

    def _restore_git_file(self) -> None:
        """Point the slot's ``.git`` at its worktree again, as ``worktree add`` wrote it."""
        git_file = self.path / ".git"
        text = f"gitdir: {self._admin}\n"
        if git_file.is_symlink() or not git_file.is_file():
            raise OSError(f"{git_file} is not the file git wrote")
        if git_file.read_text(errors="replace") != text:
            git_file.write_text(text)

    def release(self, *, tidy: bool = False) -> None:
        """Hand the slot back (the files stay); safe to call more than once.

        ``tidy=True`` (the build is over and nothing of it runs any more):
        first make the slot the clean tree of the commit it was reset to, in
        the background, and note that in its lock file, so that the next
        build starts without waiting for git. The slot stays held until then.
        """
        if self._clean is not None:  # never reset: let the clean finish first
            self._wait_clean()
        handle, self._handle = self._handle, None
        if handle is None:
            return
        # The commit to tidy the slot back to: the one it was reset to.
        sha = self._sha if tidy and self._clean_at is None and self._admin is not None else None
        done = threading.Event()
        with _guard:
            if self._family is not None:
                _held[self._family] -= 1
            if sha is not None:
                _tidying[self.path] = (self._family or self.path.parent, done)
        if sha is not None:
            threading.Thread(
                target=self._tidy, args=(handle, sha, done), name="sauci-tidy", daemon=True
            ).start()
            return
        if self._clean_at is not None:  # taken clean and never used: still clean
            _leave_note(handle, self._clean_at)
        os.close(handle)  # closing the file releases its flock

    def _tidy(self, handle: int, sha: str, done: threading.Event) -> None:
        try:
            self._start_clean()
            if self._wait_clean():
                self._checkout(sha)
                _leave_note(handle, sha)
        except (SourceError, OSError) as exc:
            # No note: the next build resets the slot itself.
            log.info("workspace_tidy_failed", workspace=str(self.path), error=str(exc))
        finally:
            os.close(handle)
            with _guard:
                _tidying.pop(self.path, None)
            done.set()

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
