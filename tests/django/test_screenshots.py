"""The README's and docs' screenshots, taken from clean demo data in a real Chromium.

Three builds of `sauci demo`'s sample repository (the demo, then two more
commits run with `sauci run`) in a fresh data dir, served by a real
`sauci serve` with no repository to watch. With SAUCI_SCREENSHOTS=1 the
pages are written to docs/screenshots/ (overview, overview-dark, build, log,
tests, builds, analytics); without it, to a temporary directory. Either way
the visible text of every page is checked: no temporary path and no script
or markup test string, which is what the hostile-input browser tests put in
their pages (tests/django/test_browser.py), so their pages are not the docs'.
"""

from __future__ import annotations

import os
import re
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sauci.testing.browser import CHROMIUM, launch_chromium

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "docs" / "screenshots"
# Where the sample repository is shown to be: what `sauci demo --dir ~` makes.
SHOWN_REPO = "~/calc"
FORBIDDEN = re.compile(r"/tmp/|/var/folders/|pytest-of-|<script|<img|onerror|alert\(", re.I)

pytestmark = pytest.mark.slow


def _need_browser():
    if not os.path.exists(CHROMIUM) and not os.environ.get("SAUCI_REQUIRE_BROWSER"):
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        if os.environ.get("SAUCI_REQUIRE_BROWSER"):
            raise
        pytest.skip("playwright is not installed (pip install playwright)")
    return sync_playwright


def _sauci(*args: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "sauci", *args, "--color", "never"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert 0 == done.returncode, done.stdout + done.stderr
    return done.stdout


def _commit(repo: Path, path: str, text: str, message: str) -> None:
    with (repo / path).open("a", encoding="utf-8") as fh:
        fh.write(text)
    for args in (("add", path), ("commit", "-q", "-m", message)):
        subprocess.run(
            ["git", "-c", "user.name=Ada Lovelace", "-c", "user.email=ada@example.com", *args],
            cwd=repo,
            check=True,
            capture_output=True,
        )


def _demo_data(base: Path) -> Path:
    """A data dir holding three builds of the demo repository; the data dir."""
    data = base / "data"
    env = {**os.environ, "SAUCI_DATA_DIR": str(data), "NO_COLOR": "1"}
    env.pop("SAUCI_SCREENSHOTS", None)
    _sauci("demo", "--dir", str(base / "demo"), env=env)
    repo = base / "demo" / "calc"
    _commit(repo, "calc.py", "\n\ndef sub(a, b):\n    return a - b\n", "Add sub")
    _sauci("run", str(repo), env=env)
    _commit(repo, "README", "calc: add, mul and sub.\n", "Say what calc does")
    _sauci("run", str(repo), env=env)
    # The builds are real; only the repository's location is shown as a
    # reader's own would be, not as this test's temporary directory.
    with sqlite3.connect(data / "sauci.db") as db:
        db.execute("UPDATE builds SET repo = ? WHERE repo = ?", (SHOWN_REPO, str(repo)))
    return data


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def demo_ui(tmp_path):
    """The web UI of `sauci serve` over the demo data: its URL."""
    data = _demo_data(tmp_path)
    port = _free_port()
    log = tmp_path / "serve.log"
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "sauci", "serve", "--data-dir", str(data)),
            *("--port", str(port), "--admin-password", "pw", "--sandbox", "local"),
            *("--color", "never"),
        ],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 60
        while "web UI on" not in log.read_text() and time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text()
            time.sleep(0.1)
        assert "web UI on" in log.read_text(), log.read_text()
        yield url, tmp_path
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_screenshots_of_clean_demo_data(demo_ui):
    sync_playwright = _need_browser()
    url, tmp = demo_ui
    shots = SHOTS if os.environ.get("SAUCI_SCREENSHOTS") else tmp / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    pages = {
        "overview": "",
        "builds": "builds/",
        "build": "builds/3/",
        "log": "builds/3/log/test%20(thorough)",
        "tests": "builds/3/tests/",
        "analytics": "analytics/",
    }
    dialogs: list[str] = []
    with sync_playwright() as pw:
        browser = launch_chromium(pw)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.set_default_timeout(20000)
            page.goto(url)
            page.fill("#id_username", "admin")
            page.fill("#id_password", "pw")
            page.click("button[type=submit]")
            page.wait_for_url(url)
            for name, path in pages.items():
                page.goto(url + path)
                page.wait_for_load_state("networkidle")
                text = page.inner_text("body")
                assert not FORBIDDEN.search(text), (name, FORBIDDEN.search(text))
                assert str(tmp) not in text
                if name == "overview":
                    assert SHOWN_REPO in text and "Say what calc does" in text
                if name == "log":
                    page.wait_for_selector("#log-lines .ln:has-text('PASS test_big')")
                page.screenshot(path=str(shots / f"{name}.png"), full_page=name != "log")
                if name == "overview":
                    page.emulate_media(color_scheme="dark")
                    page.screenshot(path=str(shots / "overview-dark.png"), full_page=True)
                    page.emulate_media(color_scheme="light")
        finally:
            browser.close()
    assert [] == dialogs
    for name in [*pages, "overview-dark"]:
        assert (shots / f"{name}.png").stat().st_size > 10_000
