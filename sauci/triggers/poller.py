"""Polling: build what changed in a repository SauCI cannot hook (a remote, someone else's).

Each poll is one ``git ls-remote --heads --tags``, compared with the shas seen
last time, which live in a small JSON file written atomically. The first poll
of a repository only records what is there and builds the default branch:
building every historical tag would bury the queue.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from sauci._logging import get_logger
from sauci.core.models import BuildRequest
from sauci.source.gitcmd import run_git
from sauci.triggers._names import ref_problem, shown
from sauci.triggers.spool import PUSH_PRIORITY

__all__ = ["Poller"]

log = get_logger(__name__)

_STATE_VERSION = 1
_NULL_SHA = "0" * 40


def _ls_remote(
    repo: str, *options: str, patterns: tuple[str, ...] = (), timeout: float
) -> list[tuple[str, str]]:
    """(sha, name) lines of ``git ls-remote``; "--" keeps a repo named "-x" from being an option."""
    out = run_git("ls-remote", *options, "--", repo, *patterns, timeout=timeout)
    pairs = []
    for line in out.splitlines():
        sha, _, name = line.partition("\t")
        if name:
            pairs.append((sha, name))
    return pairs


def _branches_and_tags(pairs: list[tuple[str, str]]) -> dict[str, str]:
    """Ref name to commit sha; annotated tags are peeled to the commit they name."""
    refs: dict[str, str] = {}
    peeled: dict[str, str] = {}
    for sha, name in pairs:
        if name.endswith("^{}"):
            peeled[name[:-3]] = sha
        elif name.startswith(("refs/heads/", "refs/tags/")):
            refs[name] = sha
    refs.update((name, sha) for name, sha in peeled.items() if name in refs)
    return refs


class Poller:
    """Turns ref changes seen by ``git ls-remote`` into build requests.

    ``state_path`` is a JSON file (created on first use) that remembers, per
    repository, the sha of every branch and tag. The state is saved before
    :meth:`poll` returns, so hand its requests to the store at once.
    """

    def __init__(self, state_path: Path | str, *, timeout: float = 60.0) -> None:
        self.state_path = Path(state_path)
        self.timeout = timeout

    def poll(self, repo: str) -> list[BuildRequest]:
        """Requests for refs of ``repo`` (path or URL) that are new or moved since last time.

        Deleted refs are forgotten, never built. SourceError if the
        repository cannot be listed (the state is then left as it was).
        """
        pairs = _ls_remote(repo, "--heads", "--tags", timeout=self.timeout)
        refs = _branches_and_tags(pairs)
        state = self._load()
        repos = state["repos"]
        entry = repos.get(repo)
        previous = entry.get("refs") if isinstance(entry, dict) else None
        if not isinstance(previous, dict):
            previous = {}
            changed = self._default_branch(repo, refs)
            log.info("poller_first_poll", repo=repo, refs=len(refs), building=changed)
        else:
            changed = [name for name, sha in refs.items() if previous.get(name) != sha]
        for name in list(changed):
            if (problem := ref_problem(name)) is not None:  # no store could keep it
                log.warning("poller_ref_refused", repo=repo, ref=shown(name), reason=problem)
                changed.remove(name)
        requests = [
            BuildRequest(
                repo=repo,
                ref=name,
                sha=refs[name],
                old_sha=previous.get(name, _NULL_SHA),
                event="push",
                priority=PUSH_PRIORITY,
                pusher="poller",
            )
            for name in sorted(changed)
        ]
        repos[repo] = {"refs": refs, "polled_at": time.time()}
        self._save(state)
        return requests

    def forget(self, repo: str) -> None:
        """Drop what is known of ``repo``: its next poll is a first poll again."""
        state = self._load()
        if state["repos"].pop(repo, None) is not None:
            self._save(state)

    def _default_branch(self, repo: str, refs: dict[str, str]) -> list[str]:
        pairs = _ls_remote(repo, "--symref", patterns=("HEAD",), timeout=self.timeout)
        for sha, name in pairs:
            if sha.startswith("ref: ") and name == "HEAD":
                target = sha[len("ref: ") :]
                return [target] if target in refs else []
        # A server that does not tell where HEAD points: the branch at HEAD's sha.
        head = next((sha for sha, name in pairs if name == "HEAD"), None)
        candidates = [name for name, sha in refs.items() if sha == head and "/heads/" in name]
        for preferred in ("refs/heads/main", "refs/heads/master"):
            if preferred in candidates:
                return [preferred]
        return sorted(candidates)[:1]

    def _load(self) -> dict[str, Any]:
        try:
            data = json.loads(self.state_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {"version": _STATE_VERSION, "repos": {}}
        except (OSError, ValueError) as exc:
            log.warning("poller_state_unreadable", path=str(self.state_path), error=str(exc))
            return {"version": _STATE_VERSION, "repos": {}}
        if not isinstance(data, dict) or not isinstance(data.get("repos"), dict):
            log.warning("poller_state_unreadable", path=str(self.state_path), error="bad shape")
            return {"version": _STATE_VERSION, "repos": {}}
        return data

    def _save(self, state: dict[str, Any]) -> None:
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.state_path.parent, prefix=f".{self.state_path.name}.")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(state, f, indent=1, sort_keys=True)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.state_path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
