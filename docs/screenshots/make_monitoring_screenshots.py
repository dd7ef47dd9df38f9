"""Make docs/screenshots/usage.png and workers.png: the Usage page and the overview's workers.

    python docs/screenshots/make_monitoring_screenshots.py [OUT_DIR]

Like the other screenshots (tests/django/test_screenshots.py with
SAUCI_SCREENSHOTS=1), these are taken from the real UI as ``sauci serve``
runs it (``serve_ui``, waitress, an SQLite store in a throw-away data
directory) in headless Chromium driven by Playwright, with Debian's
/usr/bin/chromium (never ``playwright install``). The store is filled
first with a month of usage events, three repositories' builds and three
workers (busy, idle, lost). With Pillow installed (``pip install pillow``)
the PNGs are reduced to a 256-colour palette, which keeps them under 40% of
Chromium's size (about 37 KiB each instead of 100).
"""

from __future__ import annotations

import io
import random
import sys
import tempfile
import time
from pathlib import Path

VIEWPORT = {"width": 1280, "height": 800}
PASSWORD = "screenshots"
DAY = 86400.0


def fill(store, now: float) -> None:
    """Builds of three repositories, three workers and a month of usage events."""
    from sauci.core.models import BuildRequest, Status, Worker
    from sauci.monitoring.analytics._base import AnalyticsEvent
    from sauci.monitoring.analytics.local import LocalSink

    rng = random.Random(7)
    branches = {
        "/srv/git/api.git": [("main", Status.PASSED), ("feature/rate-limits", Status.RUNNING)],
        "/srv/git/web.git": [("main", Status.PASSED), ("fix/login-redirect", Status.FAILED)],
        "/srv/git/tools.git": [("main", Status.PASSED)],
    }
    running = []
    for repo, refs in branches.items():
        for branch, status in refs:
            build = store.create_build(
                BuildRequest(
                    repo=repo,
                    ref=f"refs/heads/{branch}",
                    sha=f"{rng.getrandbits(160):040x}",
                    event="push",
                    author="Ada Lovelace",
                    message=f"{branch.split('/')[-1].replace('-', ' ').capitalize()}: tidy up",
                ),
                status=status,
            )
            started = now - rng.uniform(120, 3000)
            done = status is not Status.RUNNING
            store.update_build(
                build.id,
                started_at=started,
                finished_at=started + rng.uniform(40, 400) if done else None,
            )
            if not done:
                running.append(build.id)
    store.save_worker(
        Worker(
            name="builder-1",
            host="rack-a-01",
            labels=("linux", "x86_64", "docker"),
            slots=4,
            running=(*running, 9001, 9002),
            started_at=now - 5 * DAY,
            heartbeat_at=now - 2,
            state="online",
        )
    )
    store.save_worker(
        Worker(
            name="builder-2",
            host="rack-a-02",
            labels=("linux", "x86_64"),
            slots=2,
            started_at=now - 2 * DAY,
            heartbeat_at=now - 4,
            state="online",
        )
    )
    store.save_worker(
        Worker(
            name="arm-mini",
            host="lab-3",
            labels=("linux", "arm64"),
            slots=1,
            running=(9003,),
            started_at=now - DAY,
            heartbeat_at=now - 740,
            state="online",
        )
    )

    sink = LocalSink(store)
    users = [f"u_{rng.getrandbits(64):016x}" for _ in range(9)]
    installation = f"i_{rng.getrandbits(64):016x}"
    pages = ["overview", "build", "log", "builds", "tests", "analytics", "artifacts", "usage"]
    weights = [30, 26, 22, 10, 6, 3, 2, 1]
    for day in range(30):
        start = now - (29 - day) * DAY
        weekday = int(start // DAY + 4) % 7  # 1970-01-01 was a Thursday
        busy = 0.25 if weekday >= 5 else 1.0
        for _ in range(int(rng.randint(40, 70) * busy * (0.7 + day / 60))):
            at = start - rng.uniform(0, 10 * 3600)
            who = rng.choice(users)
            page = rng.choices(pages, weights)[0]
            sink.send(
                AnalyticsEvent(
                    name="page_view",
                    at=at,
                    distinct_id=who,
                    properties={"page": page, "component": "serve"},
                )
            )
            if rng.random() < 0.08:
                action = rng.choices(["rerun", "cancel", "trigger"], [6, 1, 3])[0]
                props = {"action": action, "component": "serve"}
                if action == "rerun":
                    props["failed_only"] = rng.random() < 0.5
                sink.send(
                    AnalyticsEvent(name="ui_action", at=at + 5, distinct_id=who, properties=props)
                )
        for _ in range(int(rng.randint(8, 16) * busy)):
            at = start - rng.uniform(0, 10 * 3600)
            trigger = rng.choices(["push", "cron", "manual"], [8, 1, 1])[0]
            props = {"trigger": trigger, "attempt": 1, "component": "serve"}
            sink.send(
                AnalyticsEvent(
                    name="build_started", at=at, distinct_id=installation, properties=props
                )
            )
            status = rng.choices(["passed", "failed", "errored"], [85, 13, 2])[0]
            done = {**props, "status": status, "duration_seconds": round(rng.uniform(40, 400), 1)}
            sink.send(
                AnalyticsEvent(
                    name="build_finished", at=at + 200, distinct_id=installation, properties=done
                )
            )
        for _ in range(rng.randint(0, 4)):
            command = rng.choices(["run", "serve", "worker", "workers", "repo"], [6, 1, 2, 2, 1])[0]
            at = start - rng.uniform(0, 10 * 3600)
            sink.send(
                AnalyticsEvent(
                    name="cli_command",
                    at=at,
                    distinct_id=installation,
                    properties={"command": command, "component": "run"},
                )
            )
    sink.close(timeout=30)


def optimise(png: bytes) -> bytes:
    """A 256-colour palette PNG (Pillow), or the PNG as Chromium made it without Pillow."""
    try:
        from PIL import Image
    except ImportError:
        print("Pillow is not installed (pip install pillow): PNGs left as they are")
        return png
    image = Image.open(io.BytesIO(png)).convert("RGB")
    small = image.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    out = io.BytesIO()
    small.save(out, format="PNG", optimize=True)
    return min(out.getvalue(), png, key=len)


def main(argv: list[str]) -> int:
    out_dir = Path(argv[0]) if argv else Path(__file__).resolve().parent
    from playwright.sync_api import sync_playwright

    from sauci.contrib.django.project import serve_ui
    from sauci.core.config import Settings
    from sauci.storage import open_store
    from sauci.testing.browser import launch_chromium

    with tempfile.TemporaryDirectory(prefix="sauci-shots-") as tmp:
        settings = Settings(data_dir=tmp)
        store = open_store(settings.store_url)
        fill(store, time.time())
        ui = serve_ui(settings, port=0, admin_password=PASSWORD, store=store, quiet=True)
        try:
            with sync_playwright() as pw:
                browser = launch_chromium(pw)
                try:
                    page = browser.new_page(viewport=VIEWPORT)
                    page.set_default_timeout(20000)
                    # serve_ui makes the admin login beside the server's start: try again until it exists.
                    for _ in range(50):
                        page.goto(f"{ui.url}accounts/login/?next=/")
                        page.fill("#id_username", "admin")
                        page.fill("#id_password", PASSWORD)
                        page.click("button[type=submit]")
                        if "/accounts/login/" not in page.url:
                            break
                        time.sleep(0.2)
                    else:
                        raise SystemExit("could not log in as admin")
                    shots = {
                        "workers.png": (ui.url, "#live-workers"),
                        "usage.png": (f"{ui.url}usage/", "svg.chart"),
                    }
                    for name, (url, ready) in shots.items():
                        page.goto(url)
                        page.wait_for_selector(ready)
                        if name == "workers.png":
                            # The workers table sits below the repositories: bring it into view.
                            page.locator("#live-workers").scroll_into_view_if_needed()
                        png = optimise(page.screenshot())
                        (out_dir / name).write_bytes(png)
                        print(f"{out_dir / name}: {len(png) // 1024} KiB")
                finally:
                    browser.close()
        finally:
            ui.stop()
            store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
