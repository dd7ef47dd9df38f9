"""The Scheduler: every way a build is asked for, cancelled or rerun goes through here.

The queue is the store: the scheduler writes queued builds and cancel
requests there, and runners claim from there. The CLI, the web UI and the
server call these methods; none of them change build state around it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping

import attrs

from sauci._logging import get_logger
from sauci.core.events import emit
from sauci.core.models import Build, BuildRequest, Event, Status
from sauci.core.rerun import RERUN_STEP_PARAM
from sauci.core.trigger_once import asked_first
from sauci.exceptions import ConfigError
from sauci.typing import Store

__all__ = ["PRIORITY", "Scheduler"]

log = get_logger(__name__)

# A manual trigger repeated within this many seconds is the same request.
TRIGGER_WINDOW = 5.0
_TRIGGER_LOCK = threading.Lock()

# Manual work first, then pushes, then cron (higher runs first).
PRIORITY = {"manual": 20, "rerun": 20, "cli": 20, "push": 10, "webhook": 10, "tag": 10, "cron": 0}


class Scheduler:
    """Queues, deduplicates, supersedes, cancels and reruns builds in a store."""

    def __init__(self, store: Store, *, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock

    def _event(self, kind: str, build_id: int | None, actor: str, **data: object) -> None:
        self.store.add_event(
            Event(kind=kind, at=self.clock(), build_id=build_id, actor=actor, data=data)
        )

    def enqueue(
        self,
        request: BuildRequest,
        *,
        actor: str = "",
        cancel_superseded: bool = False,
    ) -> Build:
        """Queue a build for ``request``; returns the existing build for a duplicate.

        A duplicate is a queued or running build of the same sha on the same
        ref of the same repository. With ``cancel_superseded``, queued and
        running builds of other commits on the same ref are cancelled.
        """
        if request.priority == 0 and request.event in PRIORITY:
            request = attrs.evolve(request, priority=PRIORITY[request.event])
        if request.sha and request.reuse_from is None:
            for status in (Status.QUEUED, Status.RUNNING):
                for other in self.store.list_builds(
                    repo=request.repo, ref=request.ref, status=status, limit=20
                ):
                    if other.sha == request.sha and other.event != "rerun":
                        log.info("build_deduplicated", build=other.id, sha=request.sha)
                        return other
        build = self.store.create_build(request)
        self._event(
            "build_queued", build.id, actor or request.pusher, event=request.event, ref=request.ref
        )
        emit("build_queued", build=build)
        if cancel_superseded and request.ref:
            for status in (Status.QUEUED, Status.RUNNING):
                for other in self.store.list_builds(
                    repo=request.repo, ref=request.ref, status=status, limit=200
                ):
                    if other.id < build.id and other.sha != build.sha:
                        self.cancel(
                            other.id, actor="sauci", reason=f"superseded by build {build.id}"
                        )
        return build

    def trigger(
        self,
        repo: str,
        *,
        ref: str = "",
        sha: str = "",
        params: Mapping[str, str] | None = None,
        actor: str = "",
        window: float = TRIGGER_WINDOW,
    ) -> Build:
        """A manual build with parameters (priority above pushes).

        Idempotent for ``window`` seconds: the same person asking for the same
        repository, ref, commit and parameters again (a double click, a
        resent form) gets the build the first request queued, while it has
        not ended; across processes too, through the store
        (:mod:`sauci.core.trigger_once`)."""
        params = dict(params or {})

        def matching(status: Status | None) -> list[Build]:
            since = self.clock() - window
            return [
                other
                for other in self.store.list_builds(repo=repo, status=status, limit=50)
                if other.event == "manual"
                and other.queued_at >= since
                and (other.ref, other.pusher, dict(other.params)) == (ref, actor, params)
                and (not sha or other.sha == sha)
            ]

        def earlier() -> Build | None:
            for status in (Status.QUEUED, Status.RUNNING):
                for other in matching(status):
                    return other
            return None

        with _TRIGGER_LOCK:  # two requests at once in this process: one build
            if (found := earlier()) is not None:
                log.info("trigger_repeated", build=found.id, actor=actor)
                return found
            now = self.clock()
            if not asked_first(
                self.store,
                repo=repo,
                ref=ref,
                sha=sha,
                actor=actor,
                params=params,
                now=now,
                window=window,
            ):
                # Asked for in another process (two web workers): its build, or
                # once it is there (unless it has ended already: then a new one).
                # One read answers both, so that a build committed between two
                # reads is not taken for an ended one.
                for n in range(21):
                    seen = matching(None)
                    if (found := next((b for b in seen if not b.status.done), None)) is not None:
                        log.info("trigger_repeated", build=found.id, actor=actor)
                        return found
                    if n == 20 or seen:
                        break
                    threading.Event().wait(0.1)
            return self.enqueue(
                BuildRequest(
                    repo=repo, ref=ref, sha=sha, event="manual", params=params, pusher=actor
                ),
                actor=actor,
            )

    def cancel(self, build_id: int, *, actor: str = "", reason: str | None = None) -> Build:
        """Cancel a queued build now, or ask the runner of a running one to stop it."""
        build = self.store.get_build(build_id)
        reason = reason or (f"cancelled by {actor}" if actor else "cancelled")
        if build.status.done:
            raise ConfigError(f"build {build_id} already {build.status.value}; nothing to cancel")
        if build.status is Status.QUEUED:
            build = self.store.update_build(
                build_id,
                status=Status.CANCELLED,
                reason=reason,
                finished_at=self.clock(),
                cancel_requested=reason,
            )
        else:
            build = self.store.update_build(build_id, cancel_requested=reason)
        self._event("build_cancel_requested", build_id, actor, reason=reason)
        log.info("build_cancel_requested", build=build_id, reason=reason)
        emit("build_cancel_requested", build=build)  # the server passes it on at once
        return build

    def rerun(
        self, build_id: int, *, failed_only: bool = False, step: str | None = None, actor: str = ""
    ) -> Build:
        """Queue the same commit again; ``failed_only`` keeps the steps that passed;
        ``step`` runs that one step again with the steps it needs and keeps the
        other results (sauci.core.rerun.reusable_steps)."""
        old = self.store.get_build(build_id)
        what = "its failed steps" if step is None else f"step {step!r}"
        if (failed_only or step is not None) and not old.status.done:
            raise ConfigError(
                f"build {build_id} is still {old.status.value}; rerun {what} when it ends"
            )
        if step is not None and step not in {s.name for s in self.store.list_steps(build_id)}:
            raise ConfigError(f"build {build_id} has no step {step!r}")
        params = {k: v for k, v in old.params.items() if k != RERUN_STEP_PARAM}
        if step is not None:
            params[RERUN_STEP_PARAM] = step
        request = BuildRequest(
            repo=old.repo,
            ref=old.ref,
            sha=old.sha,
            event="rerun",
            priority=PRIORITY["rerun"],
            params=params,
            author=old.author,
            message=old.message,
            pusher=actor,
            reuse_from=old.id if failed_only or step is not None else None,
        )
        build = self.store.create_build(request)
        extra = {"step": step} if step is not None else {}
        self._event("build_rerun", build.id, actor, of=old.id, failed_only=failed_only, **extra)
        emit("build_queued", build=build)
        return build
