"""The test-result pages of the SauCI UI: a build's results, failures first, and
one test's history across a repository's builds, with flaky tests marked
(passed and failed on the same commit).
"""

from __future__ import annotations

from collections import defaultdict

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from sauci.contrib.django import conf
from sauci.contrib.django.view_support import (
    BadParameter,
    _build_or_404,
    _ctx,
    _qs,
    bad_request,
    text_param,
    viewer,
)
from sauci.core.models import Build

__all__ = ["TEST_ORDER", "test_history", "test_results"]

TEST_ORDER = {"failed": 0, "errored": 1, "skipped": 2, "passed": 3}


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
    try:
        repo, name, classname = (
            text_param(request.GET, key) for key in ("repo", "name", "classname")
        )
    except BadParameter as exc:
        return bad_request(exc)
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
