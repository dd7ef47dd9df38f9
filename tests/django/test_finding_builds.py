"""Finding builds: free-text search over commit message, author, branch and
sha, the filters, counts by status that link to their filter, and pages
both ways (older and newer) that keep the filters.
"""

from __future__ import annotations

import re

import pytest
import test_browser_monitoring as monitoring_tests
from django.urls import reverse

from sauci.core.models import BuildRequest, Status

# The live-server site over a MemoryStore and the Chromium of the monitoring tests.
site = monitoring_tests.site
browser = monitoring_tests.browser
REPO = "/srv/git/app.git"
HOSTILE = '"><img src=x onerror="window.__pwned=1">'


def _fill(store, n=60):
    ids = []
    for i in range(n):
        build = store.create_build(
            BuildRequest(
                repo=REPO,
                ref="refs/heads/" + ("main" if i % 2 else f"feature/parser-{i}"),
                sha=f"{i:04x}" + "c0ffee" * 6,
                author="Ada <ada@example.com>" if i % 3 else "Bob <bob@example.com>",
                message=f"Fix the parser, part {i}" if i % 5 == 0 else f"Tidy {HOSTILE} {i}",
                event="push" if i % 4 else "cron",
            )
        )
        store.update_build(build.id, status=Status.FAILED if i % 7 == 0 else Status.PASSED)
        ids.append(build.id)
    return ids


def _ids(html):
    return [int(n) for n in re.findall(r'<a href="/ci/builds/(\d+)/">#', html)]


@pytest.mark.django_db
def test_text_search_covers_message_author_branch_and_sha(viewer_client, store, settings):
    settings.SAUCI = {"STORE": store, "PAGE_SIZE": 100}
    ids = _fill(store)
    url = reverse("sauci:builds")

    def found(**params):
        return _ids(viewer_client.get(url, params).content.decode())

    assert [ids[i] for i in range(59, -1, -1) if i % 5 == 0] == found(q="PARSER, part")
    assert [ids[i] for i in range(59, -1, -1) if i % 3 == 0] == found(q="bob@")
    assert [ids[i] for i in range(59, -1, -1) if i % 2 == 0] == found(q="feature/parser")
    assert [ids[26]] == found(q="001ac0ff")  # sha 001a...
    assert [ids[i] for i in range(59, -1, -1) if i % 5 == 0 and i % 7 == 0] == found(
        q="parser, part", status="failed"
    )
    assert [ids[i] for i in range(59, -1, -1) if i % 4 == 0 and i % 2 == 0] == found(
        q="feature", event="cron"
    )


@pytest.mark.django_db
def test_counts_by_status_link_to_their_filter(viewer_client, store):
    _fill(store)
    html = viewer_client.get(reverse("sauci:builds"), {"q": "parser, part"}).content.decode()
    counts = re.search(r'<p class="counts" id="build-counts">(.*?)</p>', html, re.S).group(1)
    assert counts.startswith("12 builds match")
    assert 'href="?status=failed&amp;q=parser%2C+part"' in counts
    assert re.search(r"failed</span> 2</a>", counts)
    assert re.search(r"passed</span> 10</a>", counts)


@pytest.mark.django_db
def test_pages_go_both_ways_and_keep_the_filters(viewer_client, store, settings):
    settings.SAUCI = {"STORE": store, "PAGE_SIZE": 5}
    ids = _fill(store)
    expected = [ids[i] for i in range(59, -1, -1) if i % 2 == 0]  # 30 builds on feature/ refs
    url = reverse("sauci:builds")
    pages, params = [], {"q": "feature/"}
    while True:
        response = viewer_client.get(url, params)
        html = response.content.decode()
        pages.append(_ids(html))
        found = re.search(r'<a href="\?([^"]*)" rel="next">', html)
        if not found:
            break
        params = dict(p.split("=", 1) for p in found.group(1).replace("&amp;", "&").split("&"))
        assert "feature%2F" == params["q"]
        params["q"] = "feature/"
    assert expected == [i for page in pages for i in page] and 6 == len(pages)
    back = []
    while True:
        found = re.search(r'<a href="\?([^"]*)" rel="prev">', html)
        if not found:
            break
        html = viewer_client.get(url + "?" + found.group(1).replace("&amp;", "&")).content.decode()
        back.append(_ids(html))
    assert pages[-2::-1] == back
    assert 'rel="prev"' not in html and "« Newest" not in html


@pytest.mark.django_db
@pytest.mark.parametrize("params", [{"after": "-1"}, {"after": "x"}, {"q": "x" * 201}])
def test_bad_search_parameters_are_a_400(viewer_client, store, params):
    assert 400 == viewer_client.get(reverse("sauci:builds"), params).status_code


@monitoring_tests.in_browser
def test_in_chromium_search_filter_and_page_back(site, browser, settings):
    base, store, sessions = site
    settings.SAUCI = {"STORE": store, "PAGE_SIZE": 4}
    ids = _fill(store, 30)
    tab = monitoring_tests.Tab(browser, base, sessions["viv"])
    page = tab.page
    page.goto(f"{base}builds/")
    assert page.locator("#build-counts").inner_text().startswith("30 builds")
    page.get_by_label("Search").fill("parser, part")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**q=parser**")
    assert page.locator("#build-counts").inner_text().startswith("6 builds match")
    page.locator("a[rel=next]").click()
    page.wait_for_url("**before=**")
    assert [f"#{ids[5]}", f"#{ids[0]}"] == [
        t.split()[0]
        for t in page.locator("table.builds tbody tr td:nth-child(2)").all_inner_texts()
    ]
    page.locator("a[rel=prev]").click()
    page.wait_for_url("**after=**")
    assert 4 == page.locator("table.builds tbody tr").count()
    assert "parser, part" == page.get_by_label("Search").input_value()
    page.locator("#build-counts a", has_text="failed").click()
    page.wait_for_url("**status=failed**")
    assert page.locator("#build-counts").inner_text().startswith("1 build matches · ✘ failed 1")
    assert 0 == page.locator("img").count()
    assert tab.pwned() is None and not tab.dialogs
