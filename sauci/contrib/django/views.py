"""The pages and actions of the SauCI UI.

Pages read only through the Store protocol; actions (rerun, cancel,
trigger, webhook pushes) go only through the Scheduler, with the logged-in
user as the actor. Every view checks access itself: viewing needs
``sauci.view_builds`` unless ``SAUCI["PUBLIC"]``; each action needs its own
permission, a POST and a CSRF token.
"""

from __future__ import annotations

import functools
import threading
import time
import weakref
from collections import OrderedDict, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseRedirect,
    JsonResponse,
)
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_POST

from sauci.contrib.django import conf
from sauci.contrib.django.svg import badge as badge_geometry
from sauci.contrib.django.svg import bar_chart, dag_layout, line_chart
from sauci.core.models import Build, Status, StepRun
from sauci.exceptions import ConfigError, NotFoundError, SauCIError

TEST_ORDER = {"failed": 0, "errored": 1, "skipped": 2, "passed": 3}


# -- access ----------------------------------------------------------------------


def _user(request: HttpRequest) -> Any:
    # A site without AuthenticationMiddleware has no request.user: anonymous.
    user = getattr(request, "user", None)
    if user is None:
        from django.contrib.auth.models import AnonymousUser

        user = AnonymousUser()
    return user


def _may_view(request: HttpRequest) -> bool:
    return bool(conf.config()["PUBLIC"] or _user(request).has_perm("sauci.view_builds"))


def viewer(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Let through who may view; send anonymous users to log in, refuse the rest."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not _may_view(request):
            if not _user(request).is_authenticated:
                return redirect_to_login(request.get_full_path())
            raise PermissionDenied("you may not view SauCI builds")
        return view(request, *args, **kwargs)

    return wrapper


def _require(request: HttpRequest, perm: str) -> None:
    user = _user(request)
    if not user.is_authenticated or not user.has_perm(perm):
        raise PermissionDenied(f"needs the permission {perm}")


def _actor(request: HttpRequest) -> str:
    return _user(request).get_username()


def _scheduler() -> Any:
    from sauci.core.scheduler import Scheduler

    return Scheduler(conf.get_store())


def _build_or_404(build_id: int) -> Build:
    try:
        return conf.get_store().get_build(build_id)
    except NotFoundError:
        raise Http404(f"no build {build_id}") from None


def _step_or_404(build_id: int, name: str) -> StepRun:
    for step in conf.get_store().list_steps(build_id):
        if step.name == name:
            return step
    raise Http404(f"build {build_id} has no step {name!r}")


def _ctx(request: HttpRequest, **values: Any) -> dict[str, Any]:
    cfg = conf.config()
    user = _user(request)
    values.setdefault("refresh", False)
    return {
        "sauci_title": cfg["TITLE"],
        "refresh_ms": int(cfg["REFRESH_SECONDS"] * 1000),
        "can_trigger": user.has_perm("sauci.trigger_builds"),
        "can_rerun": user.has_perm("sauci.rerun_builds"),
        "can_cancel": user.has_perm("sauci.cancel_builds"),
        **values,
    }


def _ref(branch: str) -> str:
    return branch if branch.startswith("refs/") or not branch else f"refs/heads/{branch}"


def _qs(**params: Any) -> str:
    return urlencode({k: v for k, v in params.items() if v not in (None, "")})


# -- pages ------------------------------------------------------------------------


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
    for repo in store.list_repos():
        latest = _latest_per_branch(repo)
        live = live or any(not b.status.done for b in latest)
        repos.append({"repo": repo, "builds": latest})
    return render(
        request,
        "sauci/overview.html",
        _ctx(request, repos=repos, workers=_workers(store), refresh=True, live=live),
    )


def _workers(store: Any) -> list[dict[str, Any]]:
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
        }
        for w in workers
    ]


@require_GET
@viewer
def build_list(request: HttpRequest) -> HttpResponse:
    cfg = conf.config()
    repo = request.GET.get("repo") or None
    branch = request.GET.get("branch", "").strip()
    status = request.GET.get("status", "").strip()
    event = request.GET.get("event", "").strip()
    author = request.GET.get("author", "").strip()
    before = request.GET.get("before", "").strip()
    try:
        status_value = Status(status) if status else None
        before_id = int(before) if before else None
    except ValueError:
        return HttpResponseBadRequest("bad status or before")
    size = cfg["PAGE_SIZE"]
    builds = conf.get_store().list_builds(
        repo=repo,
        ref=_ref(branch) or None,
        status=status_value,
        event=event or None,
        author=author or None,
        before_id=before_id,
        limit=size + 1,
    )
    more = len(builds) > size
    builds = builds[:size]
    filters = {"repo": repo, "branch": branch, "status": status, "event": event, "author": author}
    next_url = f"?{_qs(**filters, before=builds[-1].id)}" if more and builds else ""
    first_url = f"?{_qs(**filters)}" if before_id else ""
    return render(
        request,
        "sauci/builds.html",
        _ctx(
            request,
            repo=repo,
            builds=builds,
            filters=filters,
            statuses=[s.value for s in Status],
            events=["push", "webhook", "manual", "rerun", "cron", "cli", "tag"],
            next_url=next_url,
            first_url=first_url,
            refresh=before_id is None,
        ),
    )


@require_GET
@viewer
def build_detail(request: HttpRequest, build_id: int) -> HttpResponse:
    store = conf.get_store()
    build = _build_or_404(build_id)
    steps = store.list_steps(build_id)
    now = time.time()
    waited_until = build.started_at or (build.finished_at if build.status.done else now)
    queue_wait = waited_until - build.queued_at if waited_until and build.queued_at else None
    run_time = build.duration
    if run_time is None and build.started_at and not build.status.done:
        run_time = now - build.started_at
    tests = store.list_test_results(build_id)
    failed_tests = sum(1 for _, t in tests if t.status in ("failed", "errored"))
    return render(
        request,
        "sauci/build.html",
        _ctx(
            request,
            build=build,
            steps=steps,
            dag=dag_layout(steps),
            queue_wait=queue_wait,
            run_time=run_time,
            events=store.list_events(build_id=build_id, limit=50),
            test_count=len(tests),
            failed_tests=failed_tests,
            artifact_count=len(store.list_artifacts(build_id)),
            cancel_requested=getattr(build, "cancel_requested", None),
            refresh=not build.status.done,
        ),
    )


# -- tests, artifacts -------------------------------------------------------------------


def _history(repo: str, limit: int) -> tuple[list[Build], dict[tuple[str, str], dict[int, str]]]:
    """The repository's last builds and each test's status in each of them."""
    store = conf.get_store()
    builds = store.list_builds(repo=repo, limit=limit)
    results: dict[tuple[str, str], dict[int, str]] = defaultdict(dict)
    for build in builds:
        if not build.status.done:
            continue
        for _step, case in store.list_test_results(build.id):
            key = (case.classname, case.name)
            previous = results[key].get(build.id)
            # A test run twice in one build (matrix): a failure wins.
            if previous is None or TEST_ORDER.get(case.status, 9) < TEST_ORDER.get(previous, 9):
                results[key][build.id] = case.status
    return builds, results


def _flaky(builds: list[Build], statuses: dict[int, str]) -> bool:
    """Passed and failed on the same commit."""
    by_sha: dict[str, set[str]] = defaultdict(set)
    for build in builds:
        if build.id in statuses and build.sha:
            by_sha[build.sha].add(statuses[build.id])
    return any("passed" in s and ({"failed", "errored"} & s) for s in by_sha.values())


@require_GET
@viewer
def test_results(request: HttpRequest, build_id: int) -> HttpResponse:
    build = _build_or_404(build_id)
    cases = conf.get_store().list_test_results(build_id)
    cases.sort(key=lambda item: TEST_ORDER.get(item[1].status, 9))
    builds, history = _history(build.repo, conf.config()["HISTORY_BUILDS"])
    rows = []
    for step, case in cases:
        statuses = history.get((case.classname, case.name), {})
        rows.append(
            {
                "step": step,
                "case": case,
                "history": [(b, statuses.get(b.id)) for b in reversed(builds) if b.id in statuses][
                    -20:
                ],
                "flaky": _flaky(builds, statuses),
                "history_url": reverse("sauci:test_history")
                + "?"
                + _qs(repo=build.repo, classname=case.classname, name=case.name),
            }
        )
    counts: dict[str, int] = defaultdict(int)
    for _, case in cases:
        counts[case.status] += 1
    return render(
        request,
        "sauci/tests.html",
        _ctx(request, build=build, rows=rows, counts=dict(counts), total=len(cases)),
    )


@require_GET
@viewer
def test_history(request: HttpRequest) -> HttpResponse:
    repo = request.GET.get("repo", "")
    name = request.GET.get("name", "")
    classname = request.GET.get("classname", "")
    if not repo or not name:
        return HttpResponseBadRequest("repo and name are required")
    store = conf.get_store()
    builds = store.list_builds(repo=repo, limit=conf.config()["HISTORY_BUILDS"])
    rows = []
    statuses: dict[int, str] = {}
    for build in builds:
        for step, case in store.list_test_results(build.id):
            if case.name == name and case.classname == classname:
                rows.append({"build": build, "step": step, "case": case})
                statuses.setdefault(build.id, case.status)
    return render(
        request,
        "sauci/test_history.html",
        _ctx(
            request,
            repo=repo,
            name=name,
            classname=classname,
            rows=rows,
            flaky=_flaky(builds, statuses),
        ),
    )


def _artifact_root(build: Build) -> Path:
    from sauci.core.paths import artifact_dir

    return artifact_dir(conf.artifacts_dir(), build.repo, build.id)


@require_GET
@viewer
def artifacts(request: HttpRequest, build_id: int) -> HttpResponse:
    build = _build_or_404(build_id)
    items = conf.get_store().list_artifacts(build_id)
    return render(request, "sauci/artifacts.html", _ctx(request, build=build, items=items))


@require_GET
@viewer
def artifact_download(request: HttpRequest, build_id: int) -> HttpResponse:
    from sauci.core.artifacts import confined
    from sauci.core.paths import safe_name

    build = _build_or_404(build_id)
    step = request.GET.get("step", "")
    path = request.GET.get("path", "")
    # Only files the store lists for this build, and only inside its directory.
    if not any(s == step and a.path == path for s, a in conf.get_store().list_artifacts(build_id)):
        raise Http404("no such artifact")
    target = confined(_artifact_root(build), f"{safe_name(step)}/{path}")
    if target is None or not target.is_file():
        raise Http404("artifact file is missing")
    response = FileResponse(open(target, "rb"), as_attachment=True, filename=target.name)  # noqa: SIM115
    response["X-Content-Type-Options"] = "nosniff"
    return response


# -- badges, analytics ----------------------------------------------------------------


@require_GET
def badge(request: HttpRequest) -> HttpResponse:
    cfg = conf.config()
    if not cfg["PUBLIC_BADGES"] and not _may_view(request):
        raise PermissionDenied("badges are not public")
    repo = request.GET.get("repo", "")
    branch = request.GET.get("branch", "").strip()
    label = request.GET.get("label", "") or "build"
    word = "unknown"
    if repo:
        # The newest finished build; a running one would flip the badge back and forth.
        for build in conf.get_store().list_builds(repo=repo, ref=_ref(branch) or None, limit=20):
            if build.status.done and build.status is not Status.SKIPPED:
                word = build.status.value
                break
    response = render(
        request,
        "sauci/badge.svg",
        {"b": badge_geometry(label[:40], word)},
        content_type="image/svg+xml; charset=utf-8",
    )
    response["Cache-Control"] = "no-cache, max-age=0"
    response["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
    response["X-Content-Type-Options"] = "nosniff"
    return response


@require_GET
@viewer
def analytics(request: HttpRequest) -> HttpResponse:
    store = conf.get_store()
    repo = request.GET.get("repo") or None
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
    flaky_counts: dict[str, int] = defaultdict(int)
    if repo:
        hist_builds, history = _history(repo, limit)
        for (classname, name), statuses in history.items():
            by_sha: dict[str, set[str]] = defaultdict(set)
            for b in hist_builds:
                if b.id in statuses:
                    by_sha[b.sha].add(statuses[b.id])
            flips = sum(1 for s in by_sha.values() if "passed" in s and {"failed", "errored"} & s)
            if flips:
                flaky_counts[f"{classname}.{name}" if classname else name] = flips
    flakiest = sorted(flaky_counts.items(), key=lambda x: -x[1])[:10]
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
        ),
    )


# -- actions ------------------------------------------------------------------------------


def _back(request: HttpRequest, fallback: str) -> HttpResponseRedirect:
    return HttpResponseRedirect(fallback)


@require_POST
@csrf_protect
def rerun(request: HttpRequest, build_id: int) -> HttpResponse:
    _require(request, "sauci.rerun_builds")
    _build_or_404(build_id)
    failed_only = request.POST.get("failed_only") == "1"
    try:
        new = _scheduler().rerun(build_id, failed_only=failed_only, actor=_actor(request))
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
    _require(request, "sauci.trigger_builds")
    repo = request.POST.get("repo", "").strip()
    branch = request.POST.get("branch", "").strip()
    if not repo:
        return HttpResponseBadRequest("repo is required")
    params: dict[str, str] = {}
    for line in request.POST.get("params", "").splitlines():
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            messages.error(request, f"parameters take KEY=VALUE lines, not {line!r}")
            return _back(request, reverse("sauci:builds") + "?" + _qs(repo=repo))
        params[key.strip()] = value
    build = _scheduler().trigger(repo, ref=_ref(branch), params=params, actor=_actor(request))
    messages.success(request, f"queued build #{build.id}")
    return _back(request, reverse("sauci:build", args=[build.id]))


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
    result = handle_webhook(
        dict(request.headers), body, secret=secret, token=token, seen=_seen, max_body=max_body
    )
    queued: list[int] = []
    status, message = result.status, result.message
    if result.requests:
        # A signed payload names the URL to clone: build only repositories an
        # administrator registered, so a leaked secret cannot make SauCI fetch
        # and run anything else.
        registered = {r.location for r in conf.get_store().list_registered_repos()}
        scheduler = _scheduler()
        for build_request in result.requests:
            if build_request.repo not in registered:
                status = 200
                message = (
                    f"ignored: {build_request.repo} is not registered with SauCI "
                    f"(sauci repo add {build_request.repo})"
                )
                continue
            build = scheduler.enqueue(build_request, actor=build_request.pusher or "webhook")
            queued.append(build.id)
    return JsonResponse({"message": message, "builds": queued}, status=status)


__all__ = [
    "analytics",
    "artifact_download",
    "artifacts",
    "badge",
    "build_detail",
    "build_list",
    "cancel",
    "overview",
    "rerun",
    "test_history",
    "test_results",
    "trigger",
    "webhook",
]
