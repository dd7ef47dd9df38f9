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
from sauci.contrib.django.assertions import assertion_diff
from sauci.contrib.django.view_support import (
    BadParameter,
    _build_or_404,
    _ctx,
    _qs,
    bad_request,
    int_param,
    text_param,
    viewer,
)
from sauci.core.models import Build, TestCase
from sauci.typing import TestQuery

# A page number past this many rows is the last rows' page: no huge OFFSET.
MAX_OFFSET = 10_000_000

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


PAGE_SIZE = 100
# Each test's dots of its last builds cost every such build's results: drawn
# only for builds of at most this many tests (the history link is always there).
INLINE_HISTORY_MAX = 2000
STATUSES = ("failed", "errored", "skipped", "passed")


def _clip(text: str, size: int) -> str:
    return text if len(text) <= size else text[: size - 1] + "…"


class _Links:
    """Each row's history and log links: URLs reversed once per page, not per row."""

    def __init__(self, build: Build) -> None:
        self.history = reverse("sauci:test_history") + "?" + _qs(repo=build.repo) + "&"
        self.build = build
        self.logs: dict[str, str] = {}

    def row(self, step: str, case: TestCase) -> dict[str, object]:
        log = self.logs.get(step)
        if log is None:
            log = self.logs[step] = reverse("sauci:log", args=(self.build.id, step)) + "?"
        return {
            "step": step,
            "case": case,
            "summary": _clip(case.message, 200),
            "output": _clip(case.text, 20000),
            "diff": assertion_diff(case.message, case.text),
            "history_url": self.history + _qs(classname=case.classname, name=case.name),
            "log_url": log + _qs(q=case.name),
        }


@require_GET
@viewer
def test_results(request: HttpRequest, build_id: int) -> HttpResponse:
    build = _build_or_404(build_id)
    try:
        status, text = (text_param(request.GET, key) for key in ("status", "q"))
        number = int_param(request.GET.get("page"), "page", default=1, low=1)
    except BadParameter as exc:
        return bad_request(exc)
    query = TestQuery(
        status=status or None,
        text=text[:200],
        offset=min((number - 1) * PAGE_SIZE, MAX_OFFSET),
        limit=PAGE_SIZE,
    )
    page = conf.get_store().page_test_results(build_id, query)
    links = _Links(build)
    rows = [links.row(step, case) for step, case in page.rows]
    total = sum(page.counts.values())
    if total <= INLINE_HISTORY_MAX:
        builds, history = _history(build.repo, conf.config()["HISTORY_BUILDS"])
        for row in rows:
            case = row["case"]
            statuses = history.get((case.classname, case.name), {})  # type: ignore[attr-defined]
            shown = [(b, statuses.get(b.id)) for b in reversed(builds) if b.id in statuses]
            row["history"] = shown[-20:]
            row["flaky"] = _flaky(builds, statuses)
    pages = max(1, -(-page.matched // PAGE_SIZE))

    def link(**changes: object) -> str:
        params = {"status": status, "q": text, "page": number} | changes
        if params["page"] == 1:
            params["page"] = None
        return "?" + _qs(**params)

    return render(
        request,
        "sauci/tests.html",
        _ctx(
            request,
            build=build,
            rows=rows,
            counts=[(s, page.counts.get(s, 0)) for s in STATUSES]
            + [(s, n) for s, n in sorted(page.counts.items()) if s not in STATUSES],
            total=total,
            matched=page.matched,
            status=status,
            q=text,
            number=number,
            pages=pages,
            first=query.offset + 1 if page.rows else 0,
            last=query.offset + len(page.rows),
            inline_history=total <= INLINE_HISTORY_MAX,
            status_links=[("", "all", total, link(status=None, page=1))]
            + [(s, s, n, link(status=s, page=1)) for s, n in page.counts.items()],
            prev_url=link(page=number - 1) if number > 1 else "",
            next_url=link(page=number + 1) if number < pages else "",
            first_url=link(page=1) if number > 1 else "",
            last_url=link(page=pages) if number < pages else "",
        ),
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
    query = TestQuery(name=name, classname=classname, limit=10)
    for build in builds:
        for step, case in store.page_test_results(build.id, query).rows:
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
