"""The pages of one build in the SauCI UI: the build list, a build's steps and
timings, and its artifacts (listed, and downloaded one file at a time).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import attrs
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import render
from django.views.decorators.http import require_GET

from sauci.contrib.django import conf
from sauci.contrib.django.forges import forge_links
from sauci.contrib.django.svg import dag_layout
from sauci.contrib.django.timeline import timeline_layout
from sauci.contrib.django.view_support import (
    BadParameter,
    _build_or_404,
    _ctx,
    _qs,
    _ref,
    bad_request,
    int_param,
    text_param,
    viewer,
)
from sauci.core.models import Build, Status, StepRun
from sauci.typing import BuildQuery, Store, TestQuery

__all__ = ["artifact_download", "artifacts", "build_detail", "build_list"]


@require_GET
@viewer
def build_list(request: HttpRequest) -> HttpResponse:
    cfg = conf.config()
    try:
        repo = text_param(request.GET, "repo") or None
        branch, status, event, author, text = (
            text_param(request.GET, name).strip()
            for name in ("branch", "status", "event", "author", "q")
        )
        before_id = int_param(request.GET.get("before"), "before", default=0, low=1) or None
        after_id = int_param(request.GET.get("after"), "after", default=0, low=0) or None
    except BadParameter as exc:
        return bad_request(exc)
    try:
        status_value = Status(status) if status else None
    except ValueError:
        return HttpResponseBadRequest(f"status must be one of {', '.join(s.value for s in Status)}")
    if len(text) > 200:
        return HttpResponseBadRequest("q must be at most 200 characters")
    store = conf.get_store()
    size = cfg["PAGE_SIZE"]
    query = BuildQuery(
        repo=repo,
        ref=_ref(branch) or None,
        status=status_value,
        event=event or None,
        author=author or None,
        text=text or None,
        limit=size + 1,
    )
    newer = older = False
    if after_id is not None:
        builds = store.list_builds(attrs.evolve(query, after_id=after_id))
        newer, builds = len(builds) > size, builds[-size:]
        older = bool(builds) and bool(store.list_builds(query, before_id=builds[-1].id, limit=1))
    else:
        builds = store.list_builds(attrs.evolve(query, before_id=before_id))
        older, builds = len(builds) > size, builds[:size]
        # The first page has nothing newer; a later one asks (one indexed row).
        newer = before_id is not None and bool(builds)
        newer = newer and bool(store.list_builds(query, after_id=builds[0].id, limit=1))
    filters = {
        "repo": repo, "branch": branch, "status": status, "event": event, "author": author,
        "q": text,
    }  # fmt: skip
    stats = store.build_stats(query=query)
    return render(
        request,
        "sauci/builds.html",
        _ctx(
            request,
            repo=repo,
            builds=builds,
            filters=filters,
            total=stats["total"],
            status_counts=[
                (name, n, "?" + _qs(**(filters | {"status": name})))
                for name, n in stats["by_status"].items()
            ],
            statuses=[s.value for s in Status],
            events=["push", "webhook", "manual", "rerun", "cron", "cli", "tag"],
            next_url=f"?{_qs(**filters, before=builds[-1].id)}" if older else "",
            prev_url=f"?{_qs(**filters, after=builds[0].id)}" if newer else "",
            first_url=f"?{_qs(**filters)}" if newer else "",
            refresh=not newer,
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
    # The counts only: a build may have tens of thousands of tests.
    test_counts = store.page_test_results(build_id, TestQuery(limit=0)).counts
    failed_tests = test_counts.get("failed", 0) + test_counts.get("errored", 0)
    return render(
        request,
        "sauci/build.html",
        _ctx(
            request,
            build=build,
            steps=steps,
            dag=dag_layout(steps),
            timeline=timeline_layout(build, steps, now),
            forge=forge_links(conf.config()["FORGES"], build),
            queue_wait=queue_wait,
            run_time=run_time,
            events=store.list_events(build_id=build_id, limit=50),
            test_count=sum(test_counts.values()),
            failed_tests=failed_tests,
            artifact_count=len(store.list_artifacts(build_id)),
            cancel_requested=getattr(build, "cancel_requested", None),
            refresh=not build.status.done,
            tails=_failed_tails(store, steps),
            summaries=_summaries(store, build),  # GITHUB_STEP_SUMMARY, as Markdown
        ),
    )


def _failed_tails(store: Store, steps: list[StepRun]) -> list[tuple[StepRun, list[str]]]:
    """Each failed step with the last lines of its log (plain text: the template escapes it)."""
    from sauci.core.logtail import step_tail

    out = []
    for s in steps:
        if s.status in (Status.FAILED, Status.ERRORED):
            lines = step_tail(store, s)
            if lines:
                out.append((s, lines))
    return out


def _summaries(store: Store, build: Build) -> list[tuple[str, Any]]:
    from sauci.contrib.django.summaries import step_summaries

    return step_summaries(store, build.id, _artifact_root(build))


def _artifact_root(build: Build) -> Path:
    from sauci.core.paths import artifact_dir

    return artifact_dir(conf.artifacts_dir(), build.repo, build.id, uuid=build.uuid)


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
