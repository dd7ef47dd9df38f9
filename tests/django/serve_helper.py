"""Run SauCI's server loop and web UI in one process, as ``sauci serve`` will.

Usage: python serve_helper.py DATA_DIR REPO ADMIN_PASSWORD. Prints the UI's
URL on one line, then serves until stdin is closed.
"""

from __future__ import annotations

import os
import sys

from sauci.app.server import build_server
from sauci.contrib.django.project import serve_ui
from sauci.core.config import Settings
from sauci.core.server import ServerOptions
from sauci.storage import open_store


def main() -> None:
    data_dir, repo, password = sys.argv[1:4]
    slow = float(os.environ.get("SAUCI_TEST_SLOW_ADMIN", "0"))
    if slow:  # the admin login takes this long to make (a slow machine, a slow hash)
        import time

        from sauci.contrib.django.project import serve as ui_serve

        make = ui_serve._ensure_admin

        def slow_make(password: str | None) -> str | None:
            time.sleep(slow)
            return make(password)

        ui_serve._ensure_admin = slow_make
    # SAUCI_SANDBOX picks the sandbox (the server's policy otherwise decides).
    settings = Settings(data_dir=data_dir, sandbox=os.environ.get("SAUCI_SANDBOX", ""))
    store = open_store(settings.store_url)
    server = build_server(
        store=store, settings=settings, repos=[repo], options=ServerOptions(tick=0.05)
    )
    server.start()
    ui = serve_ui(settings, port=0, admin_password=password, store=store, quiet=True)
    print("SAUCI_UI_URL", ui.url, flush=True)
    sys.stdin.read()
    ui.stop()
    server.stop(timeout=5)


if __name__ == "__main__":
    main()
