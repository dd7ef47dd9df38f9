"""``install``: metrics, analytics and the state-change log wired onto the event hub.

The CLI calls it once per process (``sauci serve``, ``sauci worker``,
``sauci run``) and uses the store it hands back, which times every call
when metrics are on. ``close()`` unsubscribes, stops the metrics server and
gives the analytics sinks a bounded time to send what is queued.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs

from sauci._logging import get_logger

__all__ = ["Monitoring", "current", "install"]

log = get_logger(__name__)


class _Installed:
    """The Monitoring installed last in this process (None before, or once closed)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.monitoring: Monitoring | None = None


_installed = _Installed()

# Components that serve metrics by default (long-running processes).
_LONG_RUNNING = frozenset({"serve", "worker", "django"})


@attrs.define(kw_only=True, eq=False)
class Monitoring:
    """What :func:`install` set up: ``store`` (instrumented when metrics are on),
    ``metrics`` and ``analytics`` (each None when off) and ``metrics_server``."""

    store: Any
    data_dir: Path | None
    component: str
    metrics: Any = None
    analytics: Any = None
    metrics_server: Any = attrs.field(init=False, default=None)
    _unsubscribe: list[Callable[[], None]] = attrs.field(init=False, factory=list)
    _closed: bool = attrs.field(init=False, default=False)

    @property
    def metrics_port(self) -> int | None:
        return None if self.metrics_server is None else int(self.metrics_server.server_port)

    def track(self, name: str, **kwargs: Any) -> None:
        """Record a usage event when analytics are on (ids are hashed by Analytics.track)."""
        if self.analytics is not None:
            self.analytics.track(name, **kwargs)

    def close(self, timeout: float = 0.2) -> None:
        """Unsubscribe, stop the metrics server, flush analytics for at most ``timeout`` s."""
        if self._closed:
            return
        self._closed = True
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        if self.metrics_server is not None:
            self.metrics_server.shutdown()
            self.metrics_server.server_close()
        if self.analytics is not None:
            self.analytics.close(timeout)
        with _installed.lock:
            if _installed.monitoring is self:
                _installed.monitoring = None


def current() -> Monitoring | None:
    """The Monitoring installed last in this process (the Django app reuses it), or None."""
    return _installed.monitoring


def analytics_opted_in(env: Mapping[str, str]) -> bool:
    """Whether the environment turns usage analytics on: ``SAUCI_ANALYTICS=on``
    (or 1, true, yes), or a Mixpanel token, unless ``SAUCI_ANALYTICS=off``."""
    mode = env.get("SAUCI_ANALYTICS", "").strip().lower()
    if mode in ("off", "0", "false", "no"):
        return False
    return mode in ("on", "1", "true", "yes") or bool(env.get("SAUCI_MIXPANEL_TOKEN"))


def install(
    *,
    store: Any,
    component: str,
    data_dir: Path | str | None = None,
    command: str | None = None,
    metrics: bool | None = None,
    metrics_port: int | None = None,
    metrics_host: str = "127.0.0.1",
    analytics: bool | None = None,
    environ: Mapping[str, str] | None = None,
    ready: Callable[[], Any] | None = None,
) -> Monitoring:
    """Wire monitoring for one process; returns the handle (use ``handle.store`` from then on).

    - ``component``: "serve", "worker", "run" or "django" (a property of events).
    - ``metrics``: None means on for long-running components when
      prometheus_client is installed, off for ``run``; ``metrics_port`` serves
      ``/metrics`` on ``metrics_host`` (and needs prometheus_client), with
      ``/healthz`` and, given ``ready`` (returning a Readiness), ``/readyz``.
    - ``analytics``: opt-in. None means the environment decides: on when
      ``SAUCI_ANALYTICS`` is ``on`` (or ``1``, ``true``, ``yes``) or when
      ``SAUCI_MIXPANEL_TOKEN`` is set, and never when ``SAUCI_ANALYTICS`` is
      ``off``. When on, the local sink records in ``store``; Mixpanel is
      added only when ``SAUCI_MIXPANEL_TOKEN`` is set. ``command`` records a
      ``cli_command`` event.
    """
    env = os.environ if environ is None else environ
    directory = Path(data_dir) if data_dir is not None else None
    handle = Monitoring(store=store, data_dir=directory, component=component)
    from sauci.core.events import subscribe

    want_metrics = metrics
    if want_metrics is None:
        want_metrics = metrics_port is not None or component in _LONG_RUNNING
        if want_metrics and metrics_port is None:
            try:
                import prometheus_client  # noqa: F401
            except ImportError:
                want_metrics = False
                log.info(
                    "metrics_off",
                    reason="prometheus_client is not installed",
                    install="pip install 'sauci[metrics]'",
                )
    if want_metrics:
        from sauci.monitoring.metrics import Metrics

        found = Metrics(store=store)
        handle.metrics = found
        handle.store = found.instrument(store)
        handle._unsubscribe.append(subscribe(found.on_event))
        if metrics_port is not None:
            handle.metrics_server = found.serve(metrics_port, metrics_host, ready=ready)
            log.info("metrics_serving", host=metrics_host, port=handle.metrics_port)

    want_analytics = analytics if analytics is not None else analytics_opted_in(env)
    if want_analytics:
        from sauci.monitoring.analytics import Analytics, LocalSink, load_salt, mixpanel_from_env

        sinks: list[Any] = [LocalSink(store)]
        if directory is None:
            from sauci.core.config import default_data_dir

            directory = default_data_dir()
        remote = mixpanel_from_env(env, data_dir=directory)
        if remote is not None:
            sinks.append(remote)
        found_analytics = Analytics(sinks, salt=load_salt(directory), component=component)
        handle.analytics = found_analytics
        handle._unsubscribe.append(subscribe(found_analytics.on_event))
        if command:
            found_analytics.track("cli_command", command=command)

    with _installed.lock:
        _installed.monitoring = handle
    return handle
