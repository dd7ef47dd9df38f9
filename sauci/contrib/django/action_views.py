"""The SauCI UI's actions that change state: rerun, cancel and trigger a build,
and the webhook that queues builds for pushes.

They go only through the Scheduler, with the logged-in user (or the pusher)
as the actor. Rerun, cancel and trigger each need their own permission, a
POST and a CSRF token; the webhook is exempt from CSRF and is checked by
HMAC (or token) instead, and builds only registered repositories.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections import OrderedDict
from typing import Any

from django.contrib import messages
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseRedirect,
    JsonResponse,
)
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_POST

from sauci.contrib.django import conf
from sauci.contrib.django.view_support import (
    BadParameter,
    _actor,
    _build_or_404,
    _qs,
    _require,
    _scheduler,
    bad_request,
    text_param,
)
from sauci.core.models import BuildRequest, Status
from sauci.exceptions import ConfigError, SauCIError

__all__ = ["cancel", "rerun", "trigger", "webhook"]


def _back(request: HttpRequest, fallback: str) -> HttpResponseRedirect:
    return HttpResponseRedirect(fallback)


@require_POST
@csrf_protect
def rerun(request: HttpRequest, build_id: int) -> HttpResponse:
    _require(request, "sauci.rerun_builds")
    _build_or_404(build_id)
    failed_only = request.POST.get("failed_only") == "1"
    try:
        step = text_param(request.POST, "step") or None  # rerun this one step
    except BadParameter as exc:
        return bad_request(exc)
    try:
        new = _scheduler().rerun(
            build_id, failed_only=failed_only, step=step, actor=_actor(request)
        )
    except ConfigError as exc:
        messages.error(request, str(exc))
        return _back(request, reverse("sauci:build", args=[build_id]))
    messages.success(request, f"queued build #{new.id}, a rerun of #{build_id}")
    return _back(request, reverse("sauci:build", args=[new.id]))


@require_POST
@csrf_protect
def cancel(request: HttpRequest, build_id: int) -> HttpResponse:
    _require(request, "sauci.cancel_builds")
    _build_or_404(build_id)
    try:
        build = _scheduler().cancel(build_id, actor=_actor(request))
    except (ConfigError, TypeError) as exc:
        # TypeError: a store that does not know cancel_requested yet.
        messages.error(request, str(exc))
    else:
        word = "cancelled" if build.status is Status.CANCELLED else "asked to stop"
        messages.success(request, f"build #{build_id} {word}")
    return _back(request, reverse("sauci:build", args=[build_id]))


@require_POST
@csrf_protect
def trigger(request: HttpRequest) -> HttpResponse:
    """A manual build of a registered repository's existing branch, with parameters.

    Only repositories an administrator registered (``sauci repo add``) and
    branches they have are built: anything else is refused (400 for a bad
    name, 404 for an unknown repository or branch) and nothing is queued.
    """
    from sauci.contrib.django.branches import BranchError, branch_exists, branch_ref
    from sauci.source.mirrors import MirrorCache

    _require(request, "sauci.trigger_builds")
    try:
        repo = text_param(request.POST, "repo").strip()
        branch = text_param(request.POST, "branch")
        raw_params = text_param(request.POST, "params")
    except BadParameter as exc:
        return bad_request(exc)
    if not repo:
        return bad_request(BadParameter("repo is required"))
    registered = {r.location for r in conf.get_store().list_registered_repos()}
    if repo not in registered:
        return _refused(404, f"{repo!r} is not a repository registered with SauCI")
    try:
        ref = branch_ref(branch)
    except BranchError as exc:
        return bad_request(exc)
    params: dict[str, str] = {}
    for line in raw_params.splitlines():
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            messages.error(request, f"parameters take KEY=VALUE lines, not {line!r}")
            return _back(request, reverse("sauci:builds") + "?" + _qs(repo=repo))
        params[key.strip()] = value
    mirror = MirrorCache(conf.data_dir() / "mirrors").path_for(repo)
    try:
        exists = branch_exists(repo, ref, mirror=mirror)
    except BranchError as exc:
        return _refused(404, f"cannot find the branch {branch.strip()!r} in {repo}: {exc}")
    if not exists:
        return _refused(404, f"{repo} has no branch {ref.removeprefix('refs/heads/')!r}")
    build = _scheduler().trigger(repo, ref=ref, params=params, actor=_actor(request))
    messages.success(request, f"queued build #{build.id}")
    return _back(request, reverse("sauci:build", args=[build.id]))


def _refused(status: int, reason: str) -> HttpResponse:
    return HttpResponse(f"{reason}\n", status=status, content_type="text/plain; charset=utf-8")


# -- webhook ---------------------------------------------------------------------------------

_seen_lock = threading.Lock()
# Deliveries seen, per store, for stores without record_delivery (this process only).
_seen_local: weakref.WeakKeyDictionary[Any, OrderedDict[str, None]] = weakref.WeakKeyDictionary()


def _seen(delivery: str) -> bool:
    store = conf.get_store()
    record = getattr(store, "record_delivery", None)
    if record is not None:
        return bool(record(delivery))
    # A store without record_delivery: remember deliveries in this process only.
    with _seen_lock:
        seen = _seen_local.setdefault(store, OrderedDict())
        if delivery in seen:
            return True
        seen[delivery] = None
        while len(seen) > 10000:
            seen.popitem(last=False)
        return False


@csrf_exempt
@require_POST
def webhook(request: HttpRequest) -> HttpResponse:
    """Pushes from GitHub, Gitea and GitLab, checked by HMAC (or token) before anything else."""
    from sauci.triggers.webhook import handle_webhook

    cfg = conf.config()
    max_body = cfg["WEBHOOK_MAX_BODY"]
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > max_body:  # refuse before reading the body
        return JsonResponse({"message": f"body exceeds the {max_body} byte limit"}, status=413)
    body = request.read(max_body + 1)
    secret, token = conf.webhook_secret()

    def registered(build_request: BuildRequest) -> str | None:
        # A signed payload names the URL to clone: build only repositories an
        # administrator registered, so a leaked secret cannot make SauCI fetch
        # and run anything else. Checked before the delivery is recorded, so
        # it can be delivered again after `sauci repo add`.
        known = {r.location for r in conf.get_store().list_registered_repos()}
        if build_request.repo in known:
            return None
        return (
            f"ignored: {build_request.repo} is not registered with SauCI "
            f"(sauci repo add {build_request.repo})"
        )

    def acted_on(build_request: BuildRequest) -> bool:
        # A delivery recorded as seen whose build is not there was never acted
        # on (queueing failed after the id was recorded): deliver it again.
        # Searched by sha, not among the ref's latest builds: a delivery of a
        # commit built long ago, resent now, was acted on too.
        builds = conf.get_store().list_builds(
            repo=build_request.repo, ref=build_request.ref, text=build_request.sha, limit=20
        )
        return any(b.sha == build_request.sha for b in builds)

    result = handle_webhook(
        dict(request.headers),
        body,
        secret=secret,
        token=token,
        seen=_seen,
        accept=registered,
        acted_on=acted_on,
        max_body=max_body,
    )
    scheduler = _scheduler()
    asked_at = time.time()
    try:
        builds = [scheduler.enqueue(r, actor=r.pusher or "webhook") for r in result.requests]
    except SauCIError as exc:  # the store failed: the sender should deliver it again
        message = f"could not queue the build ({exc}); deliver it again"
        return JsonResponse({"message": message, "builds": []}, status=503)
    message = result.message
    # The scheduler answers a push of a commit already queued or running on
    # that ref with that build (Buildbot collapses such requests too): say so.
    earlier = [b for b in builds if b.queued_at < asked_at]
    if earlier and len(earlier) == len(builds):
        message = f"{message}: already queued or running as build #{earlier[0].id}"
    queued = [b.id for b in builds]
    return JsonResponse({"message": message, "builds": queued}, status=result.status)
