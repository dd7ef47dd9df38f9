"""Every page passes axe-core (bundled by axe-playwright-python) in a real
Chromium with no serious or critical violation; statuses carry a word, not
only a colour; the keyboard reaches the content in document order.
"""

from __future__ import annotations

import time

import pytest
import test_browser_monitoring as monitoring_tests

from sauci.core.models import BuildRequest, Status, StepRun, TestCase, Worker

REPO = "/srv/git/app.git"
SERIOUS = ("serious", "critical")


@pytest.fixture
def admin_site(live_server, settings, django_user_model):
    """(base URL, store, session cookie of a superuser: every action button shows)."""
    from django.test import Client

    from sauci.storage.memory import MemoryStore

    store = MemoryStore()
    settings.SAUCI = {"STORE": store, "FORGES": {REPO: "github:https://github.com/acme/app"}}
    root = django_user_model.objects.create_superuser("root", password="pw")
    client = Client()
    client.force_login(root)
    return f"{live_server.url}/ci/", store, client.cookies["sessionid"].value


def _seed(store):
    now = time.time()
    ids = []
    for n, (status, ref) in enumerate(
        [(Status.PASSED, "main"), (Status.FAILED, "feature/x"), (Status.RUNNING, "main")]
    ):
        build = store.create_build(
            BuildRequest(repo=REPO, ref=f"refs/heads/{ref}", sha=f"{n}" * 40, old_sha="e" * 40,
                         author="Ada <ada@example.com>", message=f"Change {n}")
        )  # fmt: skip
        store.update_build(
            build.id, status=status, started_at=now - 100 + n,
            finished_at=None if status is Status.RUNNING else now - n,
        )  # fmt: skip
        names = ("lint", "unit", "deploy")
        for i, name in enumerate(names):
            step_status = Status.FAILED if (status is Status.FAILED and name == "unit") else status
            store.save_step(
                StepRun(build_id=build.id, name=name, position=i, status=step_status,
                        needs=(names[i - 1],) if i else (), started_at=now - 95 + i * 20,
                        finished_at=None if status is Status.RUNNING else now - 80 + i * 20,
                        exit_code=1 if step_status is Status.FAILED else 0)
            )  # fmt: skip
            store.append_log(build.id, name, b"line one\nsee https://example.com/doc\nError: bad\n")
        store.add_test_results(
            build.id, "unit",
            [TestCase(name="test_a", classname="pkg", status="passed"),
             TestCase(name="test_b", classname="pkg", status="failed",
                      message="expected:<1> but was:<2>")],
        )  # fmt: skip
        ids.append(build.id)
    return ids


@monitoring_tests.in_browser
def test_every_page_has_no_serious_axe_violation(admin_site):
    from axe_playwright_python.sync_playwright import Axe

    base, store, session = admin_site
    passed, failed, running = _seed(store)
    # The overview's capacity panel: a worker with its capacity, a build that waits.
    store.save_worker(Worker(name="w1", slots=2, heartbeat_at=time.time(), cpus=2, memory=2**31))
    waiting = store.create_build(BuildRequest(repo=REPO, ref="refs/heads/main", sha="9" * 40))
    store.update_build(waiting.id, reason="waiting for a worker: no worker with 8 GiB free")
    pages = [
        "",
        "builds/",
        f"builds/?q=change&repo={REPO}",
        f"builds/{failed}/",
        f"builds/{running}/",
        f"builds/{failed}/log/unit",
        f"builds/{failed}/tests/",
        f"tests/history/?repo={REPO}&classname=pkg&name=test_b",
        f"analytics/?repo={REPO}",
        f"builds/{passed}/artifacts/",
    ]
    axe = Axe()
    found = {}
    sync_playwright = monitoring_tests._need_browser()
    with sync_playwright() as pw:
        browser = monitoring_tests.launch_chromium(pw)
        try:
            tab = monitoring_tests.Tab(browser, base, session)
            for path in pages:
                tab.page.goto(base + path)
                result = axe.run(tab.page)
                bad = [
                    f"{v['id']} ({v['impact']}): {v['nodes'][0]['target']}"
                    for v in result.response["violations"]
                    if v["impact"] in SERIOUS
                ]
                if bad:
                    found[path] = bad
            # The login page, as an anonymous visitor sees it.
            anonymous = browser.new_context().new_page()
            anonymous.goto(base + "login/")
            bad = [v["id"] for v in axe.run(anonymous).response["violations"]
                   if v["impact"] in SERIOUS]  # fmt: skip
            if bad:
                found["login/"] = bad
        finally:
            browser.close()
    assert {} == found


@monitoring_tests.in_browser
def test_statuses_carry_words_and_the_keyboard_goes_in_document_order(admin_site):
    base, store, session = admin_site
    _passed, failed, _running = _seed(store)
    sync_playwright = monitoring_tests._need_browser()
    with sync_playwright() as pw:
        browser = monitoring_tests.launch_chromium(pw)
        try:
            page = monitoring_tests.Tab(browser, base, session).page
            page.goto(f"{base}builds/{failed}/")
            # Every status badge has its word beside the icon; graph nodes and
            # timeline bars name their status in their title.
            words = page.eval_on_selector_all(
                ".st", "els => els.map(e => e.textContent.replace(/[^a-z]/g, ''))"
            )
            assert words and all(w in {s.value for s in Status} for w in words)
            titles = page.eval_on_selector_all(
                "svg.dag g.node > title, svg.timeline rect.bar.run > title",
                "els => els.map(e => e.textContent)",
            )
            assert titles and all(any(s.value in t for s in Status) for t in titles), titles
            assert 0 == page.locator("[tabindex]:not([tabindex='-1']):not([tabindex='0'])").count()
            # Tab from the top: the skip link first, and it leads to the content.
            page.keyboard.press("Tab")
            assert "Skip to content" == page.evaluate("() => document.activeElement.textContent")
            page.keyboard.press("Enter")
            assert page.evaluate("() => location.hash") == "#main"
            # Then focus moves forward through the page in document order.
            seen = []
            for _ in range(25):
                page.keyboard.press("Tab")
                seen.append(page.evaluate(
                    "() => { const a = document.activeElement; const all = [...document.querySelectorAll('*')];"
                    " return all.indexOf(a); }"
                ))  # fmt: skip
            # Forward through the content, then around to the top (the skip link).
            wrap = next(i for i in range(1, len(seen)) if seen[i] < seen[i - 1])
            assert seen[:wrap] == sorted(set(seen[:wrap])), seen
            skip = page.evaluate(
                "() => [...document.querySelectorAll('*')].indexOf(document.querySelector('a.skip'))"
            )
            assert skip in seen[wrap : wrap + 2], seen  # (the body may take focus between)
        finally:
            browser.close()
