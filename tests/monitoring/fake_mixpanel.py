"""A stand-in for Mixpanel's API host on 127.0.0.1: records /track requests.

``hold`` makes every request wait until released (a slow Mixpanel);
``fail_with`` answers that HTTP status instead of success.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeMixpanel:
    def __init__(self) -> None:
        self.requests: list[tuple[str, bytes]] = []
        self.arrived = threading.Condition()
        self.hold = threading.Event()
        self.hold.set()  # not holding
        self.waiting = 0
        self.fail_with: int | None = None
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with fake.arrived:
                    fake.waiting += 1
                    fake.arrived.notify_all()
                fake.hold.wait(30)
                with fake.arrived:
                    fake.waiting -= 1
                    fake.requests.append((self.path, body))
                    fake.arrived.notify_all()
                if fake.fail_with is not None:
                    self.send_response(fake.fail_with)
                    self.end_headers()
                    return
                reply = json.dumps({"status": 1, "error": None}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def wait_for(self, predicate, timeout: float = 30.0) -> None:
        with self.arrived:
            if not self.arrived.wait_for(lambda: predicate(self), timeout):
                raise AssertionError("the fake Mixpanel did not see what was expected in time")

    def events(self) -> list[dict[str, Any]]:
        from sauci.monitoring.analytics.mixpanel import decode_batch

        return [e for _, body in self.requests for e in decode_batch(body)]

    def close(self) -> None:
        self.hold.set()
        self.server.shutdown()
        self.server.server_close()
