"""The tests page at any size: a page of 100 rows from the store, failures first,
filtered by status and name, each test linking to its history and to its log
lines, assertion messages as a diff; hostile names and messages stay text.
The last test opens a 62,000-test build in a real Chromium.
"""

from __future__ import annotations

import time

import pytest
import test_browser_monitoring as monitoring_tests
from django.urls import reverse

from sauci.contrib.django.assertions import assertion_diff
from sauci.core.models import BuildRequest, Status, StepRun, TestCase

BIG = 62_000
IMG, SCRIPT, Tab, in_browser = (
    monitoring_tests.IMG,
    monitoring_tests.SCRIPT,
    monitoring_tests.Tab,
    monitoring_tests.in_browser,
)
# The live-server site over a MemoryStore and the Chromium of the monitoring tests.
site = monitoring_tests.site
browser = monitoring_tests.browser


def _build(store, cases, *, step="unit", log=b""):
    build = store.create_build(BuildRequest(repo="/srv/git/app.git", ref="refs/heads/main"))
    now = time.time()
    store.update_build(build.id, status=Status.FAILED, started_at=now - 5, finished_at=now)
    store.save_step(
        StepRun(build_id=build.id, name=step, position=0, status=Status.FAILED, exit_code=1)
    )
    if log:
        store.append_log(build.id, step, log)
    store.add_test_results(build.id, step, cases)
    return build


def _many(n, failed_every=50):
    return [
        TestCase(
            name=f"test_{i:06d}",
            classname=f"pkg.mod{i % 7}",
            status="failed" if i % failed_every == 7 else "passed",
            message="expected:<1> but was:<2>" if i % failed_every == 7 else "",
        )
        for i in range(n)
    ]


def _names(html):
    import re

    return re.findall(r'<code class="test-name">([^<]*)</code>', html)


@pytest.mark.django_db
def test_a_page_holds_100_tests_failures_first_with_links_both_ways(viewer_client, store):
    build = _build(store, _many(250))
    url = reverse("sauci:tests", args=[build.id])
    first = viewer_client.get(url).content.decode()
    names = _names(first)
    assert 100 == len(names)
    assert ["pkg.mod0.test_000007", "pkg.mod1.test_000057"] == names[:2]  # failures first
    assert "Tests 1 to 100 of 250" in first
    assert 'href="?page=2" rel="next"' in first and 'rel="prev"' not in first
    last = viewer_client.get(url + "?page=3").content.decode()
    assert 50 == len(_names(last)) and "Page 3 of 3" in last
    assert 'href="?page=2" rel="prev"' in last and 'rel="next"' not in last


@pytest.mark.django_db
def test_the_status_and_name_filters_narrow_the_list_and_keep_each_other(viewer_client, store):
    build = _build(store, _many(250))
    url = reverse("sauci:tests", args=[build.id])
    failed = viewer_client.get(url, {"status": "failed"}).content.decode()
    assert 5 == len(_names(failed)) and "Tests 1 to 5 of 5 matching status failed" in failed
    found = viewer_client.get(url, {"q": "TEST_00012"}).content.decode()
    assert [f"pkg.mod{i % 7}.test_{i:06d}" for i in range(120, 130)] == _names(found)
    both = viewer_client.get(url, {"q": "mod0", "status": "failed"}).content.decode()
    assert ["pkg.mod0.test_000007"] == _names(both)
    assert 'name="status" value="failed"' in both  # the search form keeps the status


@pytest.mark.django_db
@pytest.mark.parametrize("page", ["0", "-1", "x", "1e3", "99999999999999999999"])
def test_a_bad_page_number_is_a_400_with_a_reason(viewer_client, store, page):
    build = _build(store, _many(3))
    response = viewer_client.get(reverse("sauci:tests", args=[build.id]), {"page": page})
    assert 400 == response.status_code
    assert b"page" in response.content


@pytest.mark.django_db
def test_a_page_past_the_end_is_empty_not_an_error(viewer_client, store):
    build = _build(store, _many(3))
    html = viewer_client.get(reverse("sauci:tests", args=[build.id]), {"page": "9"}).content
    assert b"No test matches." in html


@pytest.mark.django_db
def test_each_test_links_to_its_history_and_to_its_log_lines(viewer_client, store):
    build = _build(store, [TestCase(name="test_a&b", classname="pkg.T", status="failed")])
    html = viewer_client.get(reverse("sauci:tests", args=[build.id])).content.decode()
    history = reverse("sauci:test_history") + "?repo=%2Fsrv%2Fgit%2Fapp.git&amp;classname=pkg.T"
    assert f'href="{history}&amp;name=test_a%26b"' in html
    assert f'href="{reverse("sauci:log", args=[build.id, "unit"])}?q=test_a%26b"' in html


@pytest.mark.django_db
def test_the_history_page_reads_only_the_named_test(viewer_client, store):
    old = _build(store, [TestCase(name="t", status="passed"), TestCase(name="u")])
    new = _build(store, [TestCase(name="t", status="failed"), TestCase(name="t", classname="x")])
    response = viewer_client.get(reverse("sauci:test_history"), {"repo": old.repo, "name": "t"})
    rows = response.context["rows"]
    assert [(new.id, "failed"), (old.id, "passed")] == [
        (r["build"].id, r["case"].status) for r in rows
    ]


@pytest.mark.django_db
def test_an_assertion_with_expected_and_actual_shows_as_a_diff(viewer_client, store):
    case = TestCase(
        name="test_eq",
        status="failed",
        message="AssertionError: expected:<hello\nworld> but was:<hello\nword>",
    )
    build = _build(store, [case])
    html = viewer_client.get(reverse("sauci:tests", args=[build.id])).content.decode()
    assert '<span class="same">           hello</span>' in html
    assert '<span class="del">- expected world</span>' in html
    assert '<span class="ins">+ actual   word</span>' in html


@pytest.mark.parametrize(
    ("message", "text", "expected", "actual"),
    [
        ("expected:<1> but was:<2>", "", "1", "2"),
        ("expected: <a b> but was: <a c>", "", "a b", "a c"),
        ("", "Expected: 3\nReceived: 4\n    at x.js:1", "3", "4"),
        ("assert 41 == 42", "", "42", "41"),
        ("", "    def test():\nE   assert [1, 2] == [1, 3]\n", "[1, 3]", "[1, 2]"),
    ],
)
def test_the_assertion_forms_give_expected_and_actual(message, text, expected, actual):
    diff = assertion_diff(message, text)
    assert diff is not None
    assert (expected, actual) == (diff.expected, diff.actual)


@pytest.mark.parametrize("message", ["", "boom", "assert x", "expected:<1> but was:<1>"])
def test_a_message_without_two_different_values_has_no_diff(message):
    assert assertion_diff(message) is None


@pytest.mark.django_db
def test_hostile_names_messages_and_diffs_stay_text(viewer_client, store):
    """Hostile: names, messages and report text come from the pushed code."""
    case = TestCase(
        name=f"test_{SCRIPT}",
        classname=IMG,
        status="failed",
        message=f"expected:<{SCRIPT}> but was:<{IMG}>",
        text=SCRIPT,
    )
    build = _build(store, [case], step=f"unit{IMG}")
    url = reverse("sauci:tests", args=[build.id])
    html = viewer_client.get(url, {"q": SCRIPT}).content.decode()
    assert "<script>window" not in html and "<img src=x" not in html
    assert "&lt;script&gt;window.__pwned" in html
    assert 1 == len(_names(html))


def _seed_big(store):
    cases = _many(BIG, failed_every=1000)
    log = b"".join(b"collecting pkg.mod%d::test_%06d\n" % (i % 7, i) for i in range(0, BIG, 97))
    log += b"FAILED pkg.mod0::test_000007 - AssertionError\n"
    return _build(store, cases, log=log)


@in_browser
def test_a_62k_test_build_pages_filters_and_leads_to_the_log_line(site, browser):
    base, store, sessions = site
    build = _seed_big(store)
    tab = Tab(browser, base, sessions["viv"])
    page = tab.page
    page.goto(f"{base}builds/{build.id}/tests/")
    assert f"Tests 1 to 100 of {BIG}" in page.locator("#tests-count").inner_text()
    assert 100 == page.locator("table.tests tbody tr").count()
    assert "pkg.mod0.test_000007" == page.locator("code.test-name").first.inner_text()
    page.get_by_role("link", name="failed 62").click()
    page.wait_for_url("**status=failed**")
    assert "Tests 1 to 62 of 62 matching status failed" in page.locator("#tests-count").inner_text()
    page.goto(f"{base}builds/{build.id}/tests/?page=2")
    page.get_by_role("link", name="Next").click()
    page.wait_for_url("**page=3**")
    assert "Tests 201 to 300" in page.locator("#tests-count").inner_text()
    page.get_by_role("link", name="Last").click()
    assert "Page 620 of 620" in page.locator(".pager").inner_text()
    page.get_by_label("Test name").fill("test_000007")
    page.get_by_role("button", name="Find").click()
    page.wait_for_url("**q=test_000007**")
    assert ["pkg.mod0.test_000007"] == page.locator("code.test-name").all_inner_texts()
    page.get_by_role("link", name="log lines").click()
    hit = page.locator("#log-results-list a").first
    hit.wait_for()
    assert "FAILED pkg.mod0::test_000007" in hit.inner_text()
    hit.click()
    page.wait_for_url("**#L*")
    line = page.locator(page.evaluate("() => location.hash"))
    assert "FAILED pkg.mod0::test_000007" in line.inner_text()
    assert tab.pwned() is None and not tab.dialogs
