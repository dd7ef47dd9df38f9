"""The metrics port's HTTP server: ``/metrics`` plus the probes an orchestrator asks.

``sauci worker --metrics-port`` (and ``sauci serve`` when given a metrics
port) answer on one port:

- ``/healthz``: 200 ``{"alive": true}`` whenever the process can answer
  (liveness; touches nothing);
- ``/readyz``: 200 when every readiness check passes, else 503, the body
  naming each check (see :mod:`sauci.monitoring.health`); 404 when the
  process was given no checks;
- anything else: the Prometheus exposition of the registry.

Served by the standard library's WSGI server on daemon threads, with
prometheus_client's own WSGI app for the metrics.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

__all__ = ["probe_app", "serve_probes"]

Start = Callable[[str, list[tuple[str, str]]], Any]


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # scrapes every 15 s: no lines
        pass


def _json(start: Start, status: str, body: dict[str, Any]) -> list[bytes]:
    data = json.dumps(body).encode()
    start(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]


def probe_app(registry: Any, ready: Callable[[], Any] | None) -> Callable[..., Iterable[bytes]]:
    """The WSGI app: probes, then metrics. ``ready()`` returns a
    :class:`~sauci.monitoring.health.Readiness`."""
    from prometheus_client import make_wsgi_app

    metrics = make_wsgi_app(registry)

    def app(environ: dict[str, Any], start: Start) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/healthz":
            return _json(start, "200 OK", {"alive": True})
        if path == "/readyz":
            if ready is None:
                return _json(start, "404 Not Found", {"message": "no readiness checks here"})
            try:
                found = ready()
            except Exception as exc:  # a probe answers, whatever failed
                return _json(
                    start, "503 Service Unavailable", {"ready": False, "error": type(exc).__name__}
                )
            status = "200 OK" if found.ready else "503 Service Unavailable"
            return _json(start, status, found.as_dict())
        return metrics(environ, start)  # type: ignore[no-any-return]

    return app


def serve_probes(
    registry: Any, port: int, host: str, *, ready: Callable[[], Any] | None = None
) -> WSGIServer:
    """Serve :func:`probe_app` on ``host:port`` in a daemon thread; returns the server
    (``.server_port``, ``.shutdown()``, ``.server_close()``). Port 0 picks a free one."""
    server = make_server(
        host,
        port,
        probe_app(registry, ready),
        server_class=_ThreadingServer,
        handler_class=_QuietHandler,
    )
    threading.Thread(target=server.serve_forever, name="sauci-metrics", daemon=True).start()
    return server
