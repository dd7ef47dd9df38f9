"""Headless Chromium for browser tests of SauCI's pages, through Playwright.

The flags make Chromium start in containers and CI machines (no sandbox, no
GPU, no shared-memory limit) and keep it off the network (no updates, sync
or QUIC). The tests, the UI benchmark and the screenshot script use them.
"""

from __future__ import annotations

from typing import Any

__all__ = ["CHROMIUM", "FLAGS", "launch_chromium"]

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def launch_chromium(playwright: Any, **options: Any) -> Any:
    """``playwright.chromium.launch`` of the system Chromium with :data:`FLAGS`."""
    return playwright.chromium.launch(
        executable_path=CHROMIUM, headless=True, args=list(FLAGS), **options
    )
