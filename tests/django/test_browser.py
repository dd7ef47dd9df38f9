"""The UI in a real headless Chromium: a push is built and shown live, hostile text stays text.

One SauCI process (server loop + web UI, as ``sauci serve`` runs them)
watches a bare repository with SauCI's post-receive hook; the test pushes to
it and drives Chromium through Playwright. Its pages hold hostile test strings, so
its screenshots stay in the test's data dir; the docs' come from clean demo
data (tests/django/test_screenshots.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sauci.testing.browser import CHROMIUM, launch_chromium

ROOT = Path(__file__).resolve().parents[2]
XSS_GIT_BRANCH = 'x"><img/src=x/onerror=alert(1)>'  # git refuses spaces in ref names
XSS_BRANCH = 'x"><img src=x onerror=alert(1)>'
XSS_TEST = "<img src=x onerror=alert(2)>test_html"

PIPELINE = """\
steps:
  build:
    run: |
      printf '\\033[1;32mcompiling\\033[0m\\n'
      echo '::group::details'
      echo 'inside the group'
      echo '::endgroup::'
      for i in $(seq 1 30); do echo "progress line $i"; sleep 0.1; done
      echo '<script>alert(1)</script>'
  test:
    needs: [build]
    run: |
      mkdir -p reports
      echo '<testsuite><testcase classname="pkg" name="test_ok"/></testsuite>' > reports/r.xml
      echo tests done
    junit: reports/*.xml
"""

pytestmark = pytest.mark.slow


def _need_browser():
    if not os.path.exists(CHROMIUM) and not os.environ.get("SAUCI_REQUIRE_BROWSER"):
        pytest.skip(
            f"{CHROMIUM} is missing (apt-get install chromium; CI sets SAUCI_REQUIRE_BROWSER)"
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        if os.environ.get("SAUCI_REQUIRE_BROWSER"):
            raise
        pytest.skip("playwright is not installed (pip install playwright)")
    return sync_playwright


def _git(cwd, *args):
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.fixture
def git_env(monkeypatch, tmp_path):
    config = tmp_path / "gitconfig"
    config.write_text("")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(config))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for role in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{role}_NAME", "Tess <b>Ter</b>")
        monkeypatch.setenv(f"GIT_{role}_EMAIL", "tess@example.com")


@pytest.fixture
def served(tmp_path, git_env):
    """(ui url, bare repo, work clone, data dir): a SauCI process watching the bare repo."""
    from sauci.triggers import install_hook

    data = tmp_path / "data"
    # The served repository is a work tree that accepts pushes (GitSource
    # cannot build from a bare repository yet; see the report).
    served_repo = tmp_path / "app"
    work = tmp_path / "work"
    _git(tmp_path, "init", "-q", "-b", "main", str(served_repo))
    _git(served_repo, "config", "receive.denyCurrentBranch", "updateInstead")
    install_hook(served_repo, data / "spool", "receive")
    _git(tmp_path, "clone", "-q", str(served_repo), str(work))
    (work / ".sauci.yml").write_text(PIPELINE)
    _git(work, "add", ".sauci.yml")
    _git(work, "commit", "-q", "-m", "first <b>commit</b>")
    bare = served_repo
    proc = subprocess.Popen(
        [
            sys.executable,
            str(Path(__file__).parent / "serve_helper.py"),
            str(data),
            str(bare),
            "pw",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        # The test's own pipeline is trusted: the local sandbox (the server
        # refuses the namespace one where its uid cannot reach tmp_path).
        env={**os.environ, "SAUCI_LOG_LEVEL": "warning", "SAUCI_SANDBOX": "local"},
    )
    url = ""
    deadline = time.monotonic() + 60
    while not url and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if line.startswith("SAUCI_UI_URL "):
            url = line.split()[1]
    assert url.startswith("http://127.0.0.1:"), "the SauCI process did not start"
    try:
        yield url, bare, work, data
    finally:
        proc.stdin.close()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_push_build_live_log_rerun_badge(served):
    sync_playwright = _need_browser()
    url, bare, work, data = served
    dialogs = []
    # Never to docs/: these pages show hostile strings and temporary paths
    # (test_screenshots.py takes the docs' pictures from clean demo data).
    shots = data / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        # Playwright's launch() makes a fresh --user-data-dir itself (and
        # refuses one in args).
        browser = launch_chromium(pw)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            # Chromium reports what the Content-Security-Policy refused on the console.
            refused = []
            page.on(
                "console",
                lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None,
            )
            page.set_default_timeout(20000)

            # Viewing needs a login.
            page.goto(url)
            assert "/accounts/login/" in page.url
            page.fill("#id_username", "admin")
            page.fill("#id_password", "pw")
            page.click("button[type=submit]")
            page.wait_for_url(url)
            assert "No builds yet" in page.inner_text("main")

            # A push appears on the open overview page without a reload, and goes live.
            _git(work, "push", "-q", "origin", "main")
            page.wait_for_selector("#live-overview .st-running, #live-overview .st-queued")
            page.click("#live-overview a[href*='/builds/']:has-text('#')")
            page.wait_for_selector("svg.dag")

            # The log of the running step streams into the open page.
            page.click("table.steps a:has-text('build')")
            page.wait_for_selector("#log-following")
            page.wait_for_selector("#log-lines .ln:has-text('progress line 25')", timeout=30000)
            page.wait_for_selector(
                "#log-lines .ln:has-text('<script>alert(1)</script>')", timeout=30000
            )
            assert page.locator("#log-lines .f2, #log-lines .b").count() >= 1  # ANSI colour
            page.wait_for_selector("#step-status .st-passed", timeout=30000)
            page.reload()
            assert page.locator("details.grp").count() == 1
            page.fill("#log-search", "progress line 2")
            page.wait_for_selector("#log-count:has-text('matches'), #log-count:has-text('of')")
            page.screenshot(path=str(shots / "log.png"))

            # The build ends passed; rerun it by the button.
            page.click("h1 a")
            page.wait_for_selector("#live-build h1 .st-passed", timeout=30000)
            page.screenshot(path=str(shots / "build.png"), full_page=True)
            first_build = page.url
            page.click("form[action$='/rerun/'] button:has-text('Rerun')")
            page.wait_for_url(lambda u: u != first_build and "/builds/" in u)
            assert "rerun" in page.inner_text("main")
            page.wait_for_selector("#live-build h1 .st-passed", timeout=60000)
            assert "admin" in page.inner_text(".events")

            # Hostile names: a pushed branch, and a build and test result written to the store.
            _git(work, "push", "-q", "origin", f"main:refs/heads/{XSS_GIT_BRANCH}")
            from sauci.core.models import BuildRequest, Status, TestCase
            from sauci.storage import open_store

            store = open_store(f"sqlite:///{data / 'sauci.db'}")
            hostile = store.create_build(
                BuildRequest(
                    repo=str(bare),
                    ref=f"refs/heads/{XSS_BRANCH}",
                    message=XSS_BRANCH,
                    author=XSS_BRANCH,
                ),
                status=Status.FAILED,
            )
            store.update_build(hostile.id, finished_at=time.time(), started_at=time.time() - 1)
            store.add_test_results(
                hostile.id,
                "test",
                [TestCase(name=XSS_TEST, status="failed", message=XSS_TEST, text=XSS_TEST)],
            )
            store.close()
            page.goto(url)
            page.wait_for_selector(f"text={XSS_GIT_BRANCH}", timeout=30000)
            page.wait_for_selector(f"text={XSS_BRANCH}")
            page.goto(f"{url}builds/{hostile.id}/tests/")
            page.wait_for_selector(f"text={XSS_TEST}")
            page.screenshot(path=str(shots / "tests.png"))
            page.goto(f"{url}builds/?repo={bare}")
            page.screenshot(path=str(shots / "builds.png"))
            page.goto(f"{url}analytics/?repo={bare}")
            page.screenshot(path=str(shots / "analytics.png"), full_page=True)

            # The badge of main says passed, readable by anyone.
            anon = browser.new_page()
            response = anon.goto(f"{url}badge.svg?repo={bare}&branch=main")
            assert response.status == 200 and "passed" in anon.content()
            anon.close()
            page.goto(url)
            page.wait_for_selector("#live-overview img[src*='badge.svg']")
            page.wait_for_timeout(500)
            page.screenshot(path=str(shots / "overview.png"), full_page=True)
            page.emulate_media(color_scheme="dark")
            page.screenshot(path=str(shots / "overview-dark.png"), full_page=True)
            assert [] == dialogs  # no script from any hostile text ran
            assert [] == refused  # the pages need nothing their policy forbids
        finally:
            browser.close()


def test_sections_continue_across_ranges_in_the_browser():
    """A section open at the end of a range takes in the lines of the next one,
    whether they come before (Load earlier) or after (live follow)."""
    import json

    from sauci.contrib.django.logs import render_lines

    sync_playwright = _need_browser()
    js = (ROOT / "sauci/contrib/django/static/sauci/sauci.js").read_text()
    log = b"before\n::group::Install\npip 1\npip 2\n::endgroup::\nafter\n"
    cut = log.index(b"pip 2")
    earlier = {"start": 0, "end": cut, "first_line": 1, "html": render_lines(log[:cut], 1, 0)}
    batches = [(b"::group::Test\nt1\n", 7), (b"t2\n::endgroup::\ndone\n", 9)]
    offset, events = len(log), ""
    for data, line in batches:
        events += f"event: lines\ndata: {json.dumps({'html': render_lines(data, line, offset), 'offset': offset + len(data)})}\n\n"
        offset += len(data)
    events += "event: end\ndata: {}\n\n"
    page_html = f"""<!doctype html><html><body><main>
<input id="log-search"><button id="log-prev"></button><button id="log-next"></button>
<span id="log-count"></span><button id="log-find-all"></button>
<input type="checkbox" id="log-ts"><input type="checkbox" id="log-wrap"><button id="log-expand">Expand all</button>
<section id="log-results" hidden><p id="log-results-status"></p><ol id="log-results-list"></ol>
<button id="log-results-more" hidden></button></section>
<div id="log" data-start="{cut}" data-end="{len(log)}" data-range-url="/range" data-ts-url="/ts"
 data-search-url="/search" data-stream-url="/stream">
<button id="log-earlier">Load earlier</button>
<div id="log-lines">{render_lines(log[cut:], 4, cut)}</div><p id="log-following"></p></div>
</main><script src="/sauci.js"></script></body></html>"""

    def handle(route):
        url = route.request.url
        if url.endswith("/sauci.js"):
            route.fulfill(body=js, content_type="text/javascript")
        elif "/range" in url:
            route.fulfill(body=json.dumps(earlier), content_type="application/json")
        elif "/stream" in url:
            route.fulfill(body=events, content_type="text/event-stream")
        else:
            route.fulfill(body=page_html, content_type="text/html")

    def section_of(page, line):
        return page.evaluate(
            f"""() => {{ var d = document.getElementById("L{line}").closest("details");
            return d ? d.querySelector("summary").textContent : null; }}"""
        )

    with sync_playwright() as pw:
        browser = launch_chromium(pw)
        try:
            page = browser.new_page()
            page.route("http://sauci.test/**", handle)
            page.goto("http://sauci.test/log")
            page.wait_for_selector("#L11", state="attached")  # both live batches arrived
            assert "7Test" == section_of(page, 9) == section_of(page, 10)
            assert section_of(page, 11) is None
            page.click("#log-earlier")
            page.wait_for_selector("#L1", state="attached")
            assert "2Install" == section_of(page, 4) == section_of(page, 5)
            assert section_of(page, 6) is None and section_of(page, 1) is None
            assert 0 == page.locator("#log-lines [data-open], #log-lines [data-end]").count()
        finally:
            browser.close()
