"""GitHub's workflow ``concurrency`` for the builds a server runs (a ClaimGate).

Per repository and group (the group's expressions evaluated for the build,
as GitHub evaluates them for a run): at most one build running and one
waiting. A newer build replaces the waiting one (cancelled, with the reason);
with ``cancel-in-progress: true`` it also cancels the running one, else it
waits for it to end. A build's group is read once, from its workflow file at
its commit, so it is known while the build is still queued. Builds of
``.sauci.yml`` and of workflows without ``concurrency`` are never held.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sauci._logging import get_logger
from sauci.core.models import Build, Status
from sauci.core.pull_requests import user_params
from sauci.core.scheduler import Scheduler
from sauci.exceptions import SauCIError
from sauci.typing import Store
from sauci.workflows._lookup import pick_github_workflow
from sauci.workflows.pull_context import pull_github

__all__ = ["ConcurrencyGate", "pick_github_workflow"]

log = get_logger(__name__)

_WAITING = "waiting for build #"
_FULL_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
Read = Callable[[str, str, str], "str | None"]  # (repo, rev, path) -> text; a folder: its listing


class ConcurrencyGate:
    """Holds and cancels queued builds by their workflow's ``concurrency`` group."""

    def __init__(self, store: Store, read: Read) -> None:
        self.store = store
        self.read = read
        self._groups: dict[int, tuple[str, bool] | None] = {}  # build id -> (group, cancel)
        self._held: set[int] = set()
        self._active = False  # any queued or running build in a group, at the last look
        # (repo, rev) -> the workflow with `concurrency` it runs, or None (_workflow)
        self._by_commit: dict[tuple[str, str], tuple[str, str] | None] = {}
        self._by_ref: dict[tuple[str, str], tuple[str, str] | None] = {}

    def group_of(self, build: Build) -> tuple[str, bool] | None:
        """The build's (group, cancel-in-progress), read once; None: not in a group."""
        if build.id not in self._groups:
            try:
                self._groups[build.id] = self._read_group(build)
            except SauCIError as exc:  # the build reports its own broken file when it runs
                log.info("concurrency_unreadable", build=build.id, error=str(exc))
                self._groups[build.id] = None
            except Exception as exc:
                # A pushed file the reader fails on (a bug of ours) holds nothing:
                # raised here, it stopped every claim of the server, each round.
                log.warning("concurrency_read_failed", build=build.id, error=repr(exc))
                self._groups[build.id] = None
        return self._groups[build.id]

    def _read_group(self, build: Build) -> tuple[str, bool] | None:
        rev = build.sha or build.ref or "HEAD"
        found = self._workflow(build.repo, rev)
        if found is None:
            return None
        # The front end (and its 24 modules) only for a workflow with a group.
        from sauci.workflows._for_build import workflow_vars
        from sauci.workflows.github import Settings, plan_github

        ref = build.ref if build.ref.startswith("refs/") else f"refs/heads/{build.branch or 'main'}"
        github: dict[str, Any] = {
            "event_name": {"manual": "workflow_dispatch", "cron": "schedule"}.get(
                build.event, "push"
            ),
            "ref": ref,
            "sha": build.sha,
            "repository": Path(build.repo).name,
            "run_id": str(build.id),
            **pull_github(build),  # `github.head_ref || github.run_id`, the usual PR group
        }
        settings = Settings(
            file=found[0], github=github, inputs=user_params(build.params), vars=workflow_vars()
        )
        return plan_github(found[1], settings).concurrency

    def _workflow(self, repo: str, rev: str) -> tuple[str, str] | None:
        """The workflow with ``concurrency`` that ``rev`` runs, or None; read once per
        commit (a full sha), and once per ref in a round (a ref moves between
        rounds): a queue of builds of one branch costs one read, not one each."""
        key = (repo, rev)
        cache = self._by_commit if _FULL_SHA.fullmatch(rev) else self._by_ref
        if key not in cache:
            if len(cache) >= 1000:
                cache.clear()
            found = None
            if self.read(repo, rev, ".sauci.yml") is None:
                found = pick_github_workflow(lambda path: self.read(repo, rev, path))
                if found is not None and "concurrency" not in found[1]:
                    found = None
            cache[key] = found
        return cache[key]

    def refresh(self) -> None:
        self._by_ref.clear()  # a branch may have moved since the last round
        builds = self.store.list_builds(status=Status.RUNNING, limit=500)
        builds += self.store.list_builds(status=Status.QUEUED, limit=500)
        groups: dict[tuple[str, str], list[Build]] = defaultdict(list)
        for build in builds:
            found = self.group_of(build)
            if found is not None:
                groups[(build.repo, found[0])].append(build)
        held: set[int] = set()
        for (_repo, group), members in groups.items():
            held |= self._settle(group, sorted(members, key=lambda b: b.id))
        self._held = held
        self._active = bool(groups)
        alive = {b.id for b in builds}
        self._groups = {k: v for k, v in self._groups.items() if k in alive}

    def _settle(self, group: str, members: list[Build]) -> set[int]:
        """Cancel what the newest build of the group replaces; the ids to hold."""
        newest = members[-1]
        cancel_running = bool((self._groups.get(newest.id) or (group, False))[1])
        scheduler = Scheduler(self.store)
        running = []
        for build in members[:-1]:
            if build.status is Status.QUEUED:
                reason = f"cancelled: replaced by build #{newest.id} in concurrency group {group!r}"
                self._cancel(scheduler, build, reason)
            elif cancel_running and not build.cancel_requested:
                reason = f"cancelled: build #{newest.id} in concurrency group {group!r} cancels it"
                self._cancel(scheduler, build, reason)
                running.append(build)
            else:
                running.append(build)
        if newest.status is not Status.QUEUED or not running:
            if newest.status is Status.QUEUED and (newest.reason or "").startswith(_WAITING):
                self.store.update_build(newest.id, reason=None)
            return set()
        reason = f"{_WAITING}{running[-1].id} (concurrency group {group!r})"
        if newest.reason != reason:
            self.store.update_build(newest.id, reason=reason)
        return {newest.id}

    def _cancel(self, scheduler: Scheduler, build: Build, reason: str) -> None:
        try:
            scheduler.cancel(build.id, reason=reason)
        except SauCIError:
            return  # ended meanwhile
        log.info("concurrency_cancelled", build=build.id, reason=reason)

    def active(self) -> bool:
        return self._active

    def may_claim(self, build_id: int) -> bool:
        if build_id not in self._groups:
            self.refresh()  # queued since the last round
        return build_id not in self._held
