"""`sauci serve` as the CLI wires it: install(), the server on handle.store, the UI.

Usage: python monitoring_serve.py DATA_DIR. Builds only what the test queues
(no repositories are watched). Prints the UI's URL on one line, then serves
until stdin is closed.
"""

from __future__ import annotations

import sys

from sauci.app.server import build_server
from sauci.contrib.django.project import serve_ui
from sauci.core.config import Settings
from sauci.core.server import ServerOptions
from sauci.monitoring import install
from sauci.storage import open_store


def main() -> None:
    data_dir = sys.argv[1]
    settings = Settings(data_dir=data_dir, grace=0.2, sandbox="local")
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = open_store(settings.store_url)
    handle = install(store=store, component="serve", data_dir=settings.data_dir, command="serve")
    server = build_server(store=handle.store, settings=settings, options=ServerOptions(tick=0.05))
    server.start()
    ui = serve_ui(settings, port=0, admin_password="pw", store=handle.store, quiet=True)
    print("SAUCI_UI_URL", ui.url, flush=True)
    sys.stdin.read()
    ui.stop()
    server.stop(timeout=5)
    handle.close()


if __name__ == "__main__":
    main()
