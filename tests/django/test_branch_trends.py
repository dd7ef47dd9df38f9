"""Per-branch duration and failure-rate trends on the analytics page."""

from __future__ import annotations

import pytest
import test_browser_monitoring as monitoring_tests
from django.urls import reverse

from sauci.contrib.django.branch_trends import branch_trends
from sauci.core.models import BuildRequest, Status

REPO = "/srv/git/app.git"
HOSTILE = 'x"><img src=x onerror=alert(1)>'
# The live-server site over a MemoryStore and the Chromium of the monitoring tests.
site = monitoring_tests.site
browser = monitoring_tests.browser


def _builds(store, ref, statuses, duration):
    for i, status in enumerate(statuses):
        build = store.create_build(BuildRequest(repo=REPO, ref=ref))
        start = 1000.0 + i * 100
        store.update_build(
            build.id, status=status, started_at=start, finished_at=start + duration + i
        )


def test_each_busy_branch_gets_its_duration_and_failure_rate(store):
    _builds(store, "refs/heads/main", [Status.PASSED] * 8 + [Status.FAILED] * 2, 60)
    _builds(store, "refs/heads/dev", [Status.FAILED, Status.ERRORED, Status.PASSED], 10)
    _builds(store, "refs/heads/rare", [Status.PASSED], 5)
    recent = store.list_builds(repo=REPO, limit=100)
    trends = branch_trends(store, REPO, recent, limit=30, top=2)
    got = [(t["branch"], t["count"], round(t["failure_rate"])) for t in trends]
    assert [("main", 10, 20), ("dev", 3, 67)] == got
    dev = trends[1]
    assert [100.0, 100.0, 200 / 3] == [v for _, _, v in dev["failure_chart"]["points"]]
    assert [10.0, 11.0, 12.0] == [v for _, _, v in dev["duration_chart"]["points"]]


@pytest.mark.django_db
def test_the_analytics_page_shows_branches_escaped(viewer_client, store):
    """Hostile: branch names come from pushers."""
    _builds(store, "refs/heads/main", [Status.PASSED, Status.FAILED], 30)
    _builds(store, f"refs/heads/{HOSTILE}", [Status.FAILED], 30)
    html = viewer_client.get(reverse("sauci:analytics"), {"repo": REPO}).content.decode()
    assert '<span class="ref">main</span>: last 2 builds, 50% failed' in html
    assert "<img src=x" not in html
    assert '<span class="ref">x&quot;&gt;&lt;img src=x onerror=alert(1)&gt;</span>' in html
    assert 4 == html.count('aria-label="Build duration in seconds on this branch"') + html.count(
        'aria-label="Failure rate in percent on this branch"'
    )


@monitoring_tests.in_browser
def test_in_chromium_each_branch_draws_two_charts(site, browser):
    base, store, sessions = site
    _builds(store, "refs/heads/main", [Status.PASSED, Status.FAILED, Status.PASSED], 30)
    _builds(store, f"refs/heads/{HOSTILE}", [Status.FAILED, Status.PASSED], 30)
    tab = monitoring_tests.Tab(browser, base, sessions["viv"])
    tab.page.goto(f"{base}analytics/?repo={REPO}")
    sections = tab.page.locator("section.branch-trend")
    assert 2 == sections.count()
    assert HOSTILE in sections.nth(1).locator("h3").inner_text()
    for i in range(2):
        charts = sections.nth(i).locator("svg.chart")
        assert 2 == charts.count() and charts.first.is_visible()
    assert tab.pwned() is None and not tab.dialogs


def test_flaky_tests_are_those_that_passed_and_failed_on_one_commit(store):
    from sauci.contrib.django.flaky import flaky_counts
    from sauci.core.models import TestCase

    def build(sha, results):
        b = store.create_build(BuildRequest(repo=REPO, ref="refs/heads/main", sha=sha))
        store.update_build(b.id, status=Status.FAILED, started_at=1.0, finished_at=2.0)
        store.add_test_results(b.id, "unit", [TestCase(name=n, classname="pkg", status=s)
                                             for n, s in results])  # fmt: skip
        return store.get_build(b.id)

    builds = [
        build("a" * 40, [("t_flaky", "failed"), ("t_broken", "failed"), ("t_ok", "passed")]),
        build("a" * 40, [("t_flaky", "passed"), ("t_broken", "errored"), ("t_ok", "passed")]),
        build("b" * 40, [("t_flaky", "errored"), ("t_other", "failed")]),
        build("b" * 40, [("t_flaky", "passed"), ("t_other", "failed")]),
        build("c" * 40, [("t_ok", "failed")]),  # one build of its commit: no evidence
    ]
    assert {"pkg.t_flaky": 2} == flaky_counts(store, builds)
