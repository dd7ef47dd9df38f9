"""The monitoring parts of the UI in a real headless Chromium: the workers table
and the Usage page keep hostile text as text, draw their charts, refuse
anonymous visitors, and fit a phone's width.

The app runs on pytest-django's live server (a thread of this process) over
a MemoryStore, so each test writes workers and usage events straight into the
store the pages read. The browser is driven through Playwright with Debian's
/usr/bin/chromium (see test_browser.py for the skip rules and flags).
"""

from __future__ import annotations

import time

import pytest
from django.urls import reverse
from test_browser import _need_browser

from sauci.core.models import BuildRequest, Status, Worker
from sauci.testing.browser import launch_chromium

# Browser tests take seconds. They need no django_db mark: the live server
# gives each one a transactional database.
in_browser = pytest.mark.slow

# Each payload, if it ever ran, would set window.__pwned or open a dialog.
SCRIPT = "<script>window.__pwned='script'</script>"
IMG = '"><img src=x onerror="window.__pwned=\'img\'">'
SVG = "<svg onload=\"window.__pwned='svg'\"></svg>"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}


@pytest.fixture
def site(live_server, settings, django_user_model):
    """(base URL of the app, store, session cookies of a viewer and of a user without rights).

    Users and sessions are made here, before Chromium starts: inside
    ``sync_playwright()`` an event loop runs in this thread and Django refuses
    ORM calls (SynchronousOnlyOperation).
    """
    from django.contrib.auth.models import Permission
    from django.test import Client

    from sauci.storage.memory import MemoryStore

    store = MemoryStore()
    settings.SAUCI = {"STORE": store}
    viewer = django_user_model.objects.create_user("viv", password="pw")
    viewer.user_permissions.add(Permission.objects.get(codename="view_builds"))
    nobody = django_user_model.objects.create_user("nob", password="pw")
    sessions = {}
    for user in (viewer, nobody):
        client = Client()
        client.force_login(user)
        sessions[user.username] = client.cookies["sessionid"].value
    return f"{live_server.url}/ci/", store, sessions


@pytest.fixture
def browser(site):
    sync_playwright = _need_browser()
    with sync_playwright() as pw:
        launched = launch_chromium(pw)
        try:
            yield launched
        finally:
            launched.close()


class Tab:
    """A page of a fresh browser context that records dialogs and failed scripts."""

    def __init__(self, browser, base, session=None, viewport=DESKTOP):
        self.context = browser.new_context(viewport=viewport)
        if session:
            self.context.add_cookies([{"name": "sessionid", "value": session, "url": base}])
        self.page = self.context.new_page()
        self.page.set_default_timeout(20000)
        self.dialogs: list[str] = []
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))

    def pwned(self):
        """What a payload that ran left behind (None: nothing ran)."""
        return self.page.evaluate("() => window.__pwned === undefined ? null : window.__pwned")

    def overflow(self):
        """How many CSS pixels the page is wider than the viewport (0: no sideways scroll)."""
        return self.page.evaluate(
            "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )


def hostile_workers(store, now):
    """Three workers: busy, idle and lost, with payloads in name, host and labels."""
    store.save_worker(
        Worker(
            name=f"busy{SCRIPT}",
            host=f"rack{IMG}",
            labels=("linux", IMG),
            slots=4,
            running=(1, 2, 3),
            heartbeat_at=now - 3,
            state="online",
        )
    )
    store.save_worker(
        Worker(name=f"idle{IMG}", labels=(SVG,), slots=2, heartbeat_at=now - 5, state="online")
    )
    store.save_worker(
        Worker(name="lost-1", labels=("arm64",), slots=1, running=(4,), heartbeat_at=now - 600)
    )


def record_usage(store, now, days=30):
    """About a month of usage events through the local sink, some with hostile names."""
    from sauci.monitoring.analytics._base import AnalyticsEvent
    from sauci.monitoring.analytics.local import LocalSink

    sink = LocalSink(store)
    users = [f"u_{n:016x}" for n in range(1, 6)]
    pages = ["overview", "build", "log", "builds", f"tests{SCRIPT}", IMG]
    for day in range(days):
        at = now - (days - 1 - day) * 86400
        for n in range(3 + (day * 7) % 11):
            who = users[(day + n) % len(users)]
            sink.send(
                AnalyticsEvent(
                    name="page_view",
                    at=at - n * 60,
                    distinct_id=who,
                    properties={"page": pages[(day + n) % len(pages)], "component": "django"},
                )
            )
        if day % 3 == 0:
            action = ["rerun", "cancel", "trigger", SVG][day % 4]
            sink.send(
                AnalyticsEvent(
                    name="ui_action", at=at, distinct_id=users[0], properties={"action": action}
                )
            )
        sink.send(
            AnalyticsEvent(
                name="cli_command",
                at=at,
                distinct_id="i_00000000000000aa",
                properties={"command": "run"},
            )
        )
    sink.close(timeout=10)


@in_browser
def test_worker_names_and_labels_show_as_text_and_nothing_runs(site, browser):
    base, store, sessions = site
    store.create_build(
        BuildRequest(repo="/srv/git/app.git", ref="refs/heads/main"), status=Status.RUNNING
    )
    hostile_workers(store, time.time())
    tab = Tab(browser, base, sessions["viv"])
    page = tab.page
    page.goto(base)
    table = page.locator("#live-workers")
    # The live refresh swaps the table for the server's fresh copy: check after one.
    page.evaluate("() => { document.getElementById('live-workers').dataset.old = '1'; }")
    page.wait_for_function("() => !document.querySelector('#live-workers[data-old]')")
    assert 0 == table.locator("script, img, svg").count()
    rows = table.locator("tbody tr")
    assert 3 == rows.count()
    text = table.inner_text()
    for literal in (f"busy{SCRIPT}", f"rack{IMG}", f"linux, {IMG}", f"idle{IMG}", SVG):
        assert literal in text
    states = [rows.nth(i).locator("td").all_inner_texts() for i in range(3)]
    assert [
        ["3 / 4", "online"],
        ["0 / 2", "online"],
        ["1 / 1", "lost (last said online)"],
    ] == [[cells[2], cells[6]] for cells in sorted(states, key=lambda c: c[0])]
    assert None is tab.pwned()
    assert [] == tab.dialogs


@in_browser
def test_the_payload_detector_sees_a_payload_that_runs(site, browser):
    """A control: the same payloads, unescaped, do run, so the checks above can fail."""
    base, _store, _sessions = site
    tab = Tab(browser, base)
    tab.page.set_content(f"<p>{IMG}</p>")
    tab.page.wait_for_function("() => window.__pwned !== undefined")
    assert "img" == tab.pwned()


@in_browser
def test_usage_page_draws_charts_and_keeps_hostile_names_as_text(site, browser, settings):
    base, store, sessions = site
    settings.SAUCI = {"STORE": store, "ANALYTICS": True}
    record_usage(store, time.time())
    tab = Tab(browser, base, sessions["viv"])
    page = tab.page
    response = page.goto(f"{base}usage/")
    assert 200 == response.status
    charts = page.locator("main svg.chart")
    assert 5 == charts.count()  # per day, by kind, pages, actions, commands
    for i in range(charts.count()):
        box = charts.nth(i).bounding_box()
        assert box["width"] > 100 and box["height"] > 10
    per_day = charts.nth(0)
    assert 30 == per_day.locator("circle.pt").count()
    assert per_day.locator("path.line").get_attribute("d").startswith("M")
    labels = page.locator("main svg.chart text.lbl").all_text_contents()
    for literal in (f"tests{SCRIPT}", IMG, SVG, "page_view", "rerun", "run"):
        # Long labels are cut to 30 characters (the whole name is the bar's title).
        assert (literal if len(literal) <= 30 else literal[:29] + "…") in labels
    assert "30" in labels  # 30 "run" commands: counts are whole numbers, not "30.0"
    assert not [label for label in labels if label.endswith(".0")]
    titles = page.locator("main svg.chart g > title").all_text_contents()
    for literal in (f"tests{SCRIPT}", IMG):
        assert any(t.startswith(f"{literal}: ") for t in titles)  # the whole name on hover
    recent = page.locator("table.usage-events").inner_text()
    assert f"page={IMG}" in recent or f"page=tests{SCRIPT}" in recent
    assert 0 == page.locator("main script, main img, main svg:not(.chart)").count()
    assert None is tab.pwned()
    assert [] == tab.dialogs


@in_browser
def test_usage_page_refuses_anonymous_and_unpermitted_users_unless_public(site, browser, settings):
    base, store, sessions = site
    record_usage(store, time.time(), days=2)
    anonymous = Tab(browser, base)
    anonymous.page.goto(f"{base}usage/")
    assert "/accounts/login/?next=" in anonymous.page.url  # the host site's login page
    assert 0 == anonymous.page.locator("svg.chart").count()

    refused = Tab(browser, base, sessions["nob"])
    assert 403 == refused.page.goto(f"{base}usage/").status
    assert 0 == refused.page.locator("svg.chart").count()

    settings.SAUCI = {"STORE": store, "PUBLIC": True}
    assert 200 == anonymous.page.goto(f"{base}usage/").status
    assert 5 == anonymous.page.locator("main svg.chart").count()


@in_browser
@pytest.mark.parametrize("path", ["", "usage/"])
def test_no_sideways_scrolling_on_a_phone(site, browser, settings, path):
    base, store, sessions = site
    settings.SAUCI = {"STORE": store, "ANALYTICS": True}
    now = time.time()
    for n, status in enumerate([Status.PASSED, Status.FAILED, Status.RUNNING]):
        build = store.create_build(
            BuildRequest(
                repo="/srv/git/a-repository-with-a-rather-long-name-for-a-phone.git",
                ref=f"refs/heads/feature/{n}-a-branch-name-that-does-not-fit-on-a-phone-screen",
                sha="0123456789abcdef0123456789abcdef01234567",
                message="A commit message long enough to need wrapping on a narrow screen",
            ),
            status=status,
        )
        store.update_build(build.id, started_at=now - 90, finished_at=now - 30)
    hostile_workers(store, now)
    record_usage(store, now)
    tab = Tab(browser, base, sessions["viv"], viewport=PHONE)
    assert 200 == tab.page.goto(f"{base}{path}").status
    assert 0 == tab.overflow()


# -- the same fixes, without a browser ---------------------------------------------------


@pytest.mark.django_db
def test_a_worker_silent_past_the_stale_limit_shows_as_lost(viewer_client, store, settings):
    """As ``sauci workers`` says: a silent worker is lost, an offline one stays offline."""
    settings.SAUCI = {"STORE": store, "HEARTBEAT_STALE_SECONDS": 60.0}
    now = time.time()
    for name, state, age in [
        ("fresh", "online", 5),
        ("silent", "online", 120),
        ("draining", "stopping", 120),
        ("gone", "offline", 120),
    ]:
        store.save_worker(Worker(name=name, state=state, heartbeat_at=now - age))
    html = viewer_client.get(reverse("sauci:overview")).content.decode()
    rows = {
        row.split("<code>", 1)[1].split("</code>", 1)[0]: row.split('class="wstate">', 1)[1]
        for row in html.split('<tr class="worker-')[1:]
    }
    assert rows["fresh"].startswith("online</td>")
    assert rows["silent"].startswith('<strong class="lost">lost</strong> <small>(last said online)')
    assert rows["draining"].startswith(
        '<strong class="lost">lost</strong> <small>(last said stopping)'
    )
    assert rows["gone"].startswith("offline</td>")


@pytest.mark.django_db
def test_the_login_page_names_the_app(client, store):
    """The login page is the site's view, without SauCI's context: the header still says SauCI."""
    html = client.get("/accounts/login/").content.decode()
    assert '<a class="brand" href="/ci/">SauCI</a>' in html


@pytest.mark.django_db
def test_recent_usage_events_are_newest_first_whatever_order_they_arrived_in(
    viewer_client, store, settings
):
    """Each process's sink sends its own batches, so the store's order is not time order."""
    from sauci.monitoring.analytics._base import AnalyticsEvent
    from sauci.monitoring.analytics.local import LocalSink

    now = time.time()
    sink = LocalSink(store)
    for hours, page in [(5, "five"), (1, "one"), (9, "nine"), (3, "three")]:
        sink.send(
            AnalyticsEvent(
                name="page_view",
                at=now - hours * 3600,
                distinct_id="u_1",
                properties={"page": page},
            )
        )
    sink.close(timeout=10)
    html = viewer_client.get(reverse("sauci:usage")).content.decode()
    table = html.split('class="usage-events"', 1)[1]
    shown = [cell.split("</span>", 1)[0] for cell in table.split('<span class="prop">page=')[1:]]
    assert ["one", "three", "five", "nine"] == shown
