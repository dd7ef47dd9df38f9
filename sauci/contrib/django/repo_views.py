"""The SauCI UI's pages about repositories rather than one build: the overview
(each branch's latest build, and the workers), analytics, and the status badge.
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.views.decorators.http import require_GET

from sauci.contrib.django import conf
from sauci.contrib.django.branch_trends import branch_trends
from sauci.contrib.django.capacity_panel import capacity_panel, worker_use
from sauci.contrib.django.flaky import flaky_counts
from sauci.contrib.django.svg import badge as badge_geometry
from sauci.contrib.django.svg import bar_chart, line_chart
from sauci.contrib.django.view_support import (
    BadParameter,
    _ctx,
    _may_view,
    _ref,
    bad_request,
    text_param,
    viewer,
)
from sauci.core.models import Build, Status
from sauci.exceptions import SauCIError

__all__ = ["analytics", "badge", "overview"]


def _latest_per_branch(repo: str, limit: int = 200) -> list[Build]:
    # The store has no "latest build of each ref" query yet: the newest
    # ``limit`` builds of the repository stand in for it.
    seen: dict[str, Build] = {}
    for build in conf.get_store().list_builds(repo=repo, limit=limit):
        seen.setdefault(build.ref, build)
    return sorted(seen.values(), key=lambda b: -b.id)


@require_GET
@viewer
def overview(request: HttpRequest) -> HttpResponse:
    store = conf.get_store()
    repos = []
    live = False
    panel = capacity_panel(store)
    for repo in store.list_repos():
        latest = _latest_per_branch(repo)
        live = live or any(not b.status.done for b in latest)
        repos.append({"repo": repo, "builds": latest})
    return render(
        request,
        "sauci/overview.html",
        _ctx(
            request,
            repos=repos,
            workers=_workers(store, panel["rooms"]),
            capacity=panel,
            refresh=True,
            live=live,
        ),
    )


def _workers(store: Any, rooms: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The recorded workers, for the overview (none with a store that keeps none).

    A worker that stopped heartbeating still says "online" in the store (it
    could not say otherwise): past HEARTBEAT_STALE_SECONDS it shows as
    "lost", as ``sauci workers`` shows it.
    """
    try:
        workers = store.list_workers()
    except (AttributeError, NotImplementedError, SauCIError):
        return []
    stale = conf.config()["HEARTBEAT_STALE_SECONDS"]
    now = time.time()
    return [
        {
            "w": w,
            "labels": ", ".join(w.labels),
            "used": w.slots_used,
            "heartbeat": w.heartbeat_at or None,
            "state": w.state_at(now, stale_after=stale),
            **worker_use(w, rooms),
        }
        for w in workers
    ]


def _badge(label: str, word: str, *, status: int = 200) -> HttpResponse:
    response = HttpResponse(
        render_to_string("sauci/badge.svg", {"b": badge_geometry(label[:40], word)}),
        status=status,
        content_type="image/svg+xml; charset=utf-8",
    )
    response["Cache-Control"] = "no-cache, max-age=0"
    response["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
    response["X-Content-Type-Options"] = "nosniff"
    return response


@require_GET
def badge(request: HttpRequest) -> HttpResponse:
    """The newest finished build's status of a repository (and branch) as an SVG badge.

    A repository SauCI does not know and one the visitor may not see (badges
    not public, and not a viewer) get the same 404, body and headers alike,
    so a badge URL tells nobody whether a private repository exists. The
    store is asked in both cases, so the time taken does not tell either.
    """
    cfg = conf.config()
    allowed = cfg["PUBLIC_BADGES"] or _may_view(request)
    repo = request.GET.get("repo", "")
    branch = request.GET.get("branch", "").strip()
    label = request.GET.get("label", "") or "build"
    store = conf.get_store()
    known = bool(repo) and "\x00" not in repo and repo in store.list_repos()
    if not (allowed and known) or "\x00" in branch:
        return _badge(label, "not found", status=404)
    word = "unknown"
    # The newest finished build; a running one would flip the badge back and forth.
    for build in store.list_builds(repo=repo, ref=_ref(branch) or None, limit=20):
        if build.status.done and build.status is not Status.SKIPPED:
            word = build.status.value
            break
    return _badge(label, word)


@require_GET
@viewer
def analytics(request: HttpRequest) -> HttpResponse:
    try:
        repo = text_param(request.GET, "repo") or None
    except BadParameter as exc:
        return bad_request(exc)  # before the store is opened: a bad link costs nothing
    store = conf.get_store()
    limit = conf.config()["HISTORY_BUILDS"]
    builds = [b for b in store.list_builds(repo=repo, limit=limit * 2) if b.status.done][:limit]
    builds.reverse()  # oldest first
    durations = [b.duration for b in builds]
    waits = [(b.started_at - b.queued_at) if b.started_at and b.queued_at else None for b in builds]
    window, rates = 10, []
    for i in range(len(builds)):
        recent = [
            b for b in builds[max(0, i - window + 1) : i + 1] if b.status is not Status.SKIPPED
        ]
        passed = sum(1 for b in recent if b.status is Status.PASSED)
        rates.append(100.0 * passed / len(recent) if recent else None)
    step_times: dict[str, list[float]] = defaultdict(list)
    for build in builds[-20:]:
        for step in store.list_steps(build.id):
            if step.duration is not None:
                step_times[step.name].append(step.duration)
    slowest = sorted(
        ((name, sum(v) / len(v)) for name, v in step_times.items()), key=lambda x: -x[1]
    )[:10]
    flaky = flaky_counts(store, builds) if repo else {}
    flakiest = sorted(flaky.items(), key=lambda x: -x[1])[:10]
    stats = store.build_stats(repo=repo)
    return render(
        request,
        "sauci/analytics.html",
        _ctx(
            request,
            repo=repo,
            repos=store.list_repos(),
            stats=stats,
            count=len(builds),
            duration_chart=line_chart(durations),
            wait_chart=line_chart(waits),
            rate_chart=line_chart(rates, unit="%"),
            slowest_chart=bar_chart(slowest),
            flaky_chart=bar_chart([(n, float(c)) for n, c in flakiest], unit=" commits"),
            branches=branch_trends(store, repo, builds, limit=limit) if repo else [],
        ),
    )
