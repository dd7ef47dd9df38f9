"""A running build whose worker fell silent: its verdict, and its next attempt per the policy."""

from __future__ import annotations

from sauci._logging import get_logger
from sauci.core.config import Settings
from sauci.core.events import emit
from sauci.core.models import Build, BuildRequest, Event, Status, request_again
from sauci.typing import Store

__all__ = ["end_lost"]

log = get_logger(__name__)


def _queued_retry(store: Store, build: Build) -> Build | None:
    """The next attempt of ``build`` if one is already queued: a server that died
    between making it and recording the verdict (or a second server) made it."""
    for queued in store.list_builds(status=Status.QUEUED, repo=build.repo, limit=1000):
        if queued.id > build.id and queued.attempt == build.attempt + 1:
            events = store.list_events(build_id=queued.id)
            if any(e.data.get("retry_of") == build.id for e in events):
                return queued
    return None


def end_lost(
    store: Store, settings: Settings, name: str, build: Build, owner: str, silent: float, now: float
) -> Build | None:
    """End ``build``, whose worker ``owner`` fell silent, errored (cancelled when a
    cancel was asked for), and queue its next attempt when the policy allows one.
    ``name`` is the server's owner name; None when the worker recorded its own result."""
    lost = f"worker lost: {owner} stopped heartbeating (silent for {silent:.0f} s)"
    retry = None
    if build.cancel_requested:  # asked to stop anyway: do not try again
        status, reason = Status.CANCELLED, f"{build.cancel_requested}; {lost}"
    elif build.attempt < settings.attempts:
        # The next attempt is made first, so that the verdict below is
        # written once and whole ("...; requeued as build N"). Not through
        # Scheduler.enqueue: its duplicate check would find this very
        # build, still running.
        retry = _queued_retry(store, build)
        if retry is None:
            retry = store.create_build(_retry_request(build))
            # Recorded at once: it links the retry to this build, so that a
            # server restarted before the verdict below reuses it.
            store.add_event(
                Event(
                    kind="build_queued",
                    at=now,
                    build_id=retry.id,
                    actor="sauci",
                    data={"event": retry.event, "ref": retry.ref, "retry_of": build.id},
                )
            )
        status, reason = Status.ERRORED, f"{lost}; requeued as build {retry.id}"
    else:
        status = Status.ERRORED
        reason = f"{lost}; not tried again (attempt {build.attempt} of {settings.attempts})"
    # Compare-and-set on the owner: if the worker recorded its result
    # meanwhile, that result stands and nothing is recorded twice.
    final = store.finish_build(build.id, owner, status=status, reason=reason, finished_at=now)
    if final is None:
        # By compare-and-set too: with a second server on the store, the
        # retry may already be claimed by a worker, and that run stands; and
        # the verdict recorded may be the other server's, naming this retry.
        verdict = store.get_build(build.id).reason or ""
        if (
            retry is not None
            and not verdict.endswith(f"requeued as build {retry.id}")
            and store.claim_build(name, build_id=retry.id)
        ):
            store.finish_build(
                retry.id,
                name,
                status=Status.CANCELLED,
                reason=f"not needed: build {build.id} recorded its own result",
                finished_at=now,
            )
        return None
    if retry is not None:
        log.info("build_queued", build=retry.id, retry_of=build.id, attempt=retry.attempt)
        emit("build_queued", build=retry)
    log.warning("build_lost", build=build.id, worker=owner, reason=reason)
    emit("build_lost", build=final)
    return final


def _retry_request(build: Build) -> BuildRequest:
    """The same commit again, as the next attempt."""
    return request_again(build, attempt=build.attempt + 1)
