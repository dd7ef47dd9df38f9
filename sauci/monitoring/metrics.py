"""Prometheus metrics of SauCI, fed by the event hub and by the store.

Every :class:`Metrics` has its own ``CollectorRegistry`` (never the global
one), so two installations in one process, or two tests, never share
counters. Counters and histograms come from :mod:`sauci.core.events`;
the queue depth and the age of its oldest build are read from the store when
Prometheus scrapes (the queue *is* the store, so any process can report it);
store latency is measured by :class:`InstrumentedStore`, a proxy around any
Store. prometheus_client is imported only here, and only when metrics are
wanted (the ``metrics`` extra).
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from typing import Any

from sauci._logging import get_logger
from sauci.core.models import EndedBy, Status

# What is measured around the store lives in store_metrics; its names stay
# importable from here.
from sauci.monitoring.store_metrics import InstrumentedStore, StoreCollector, backend_name

__all__ = [
    "BUILD_BUCKETS",
    "STORE_BUCKETS",
    "InstrumentedStore",
    "Metrics",
    "backend_name",
    "render",
    "require_prometheus",
]

log = get_logger(__name__)

# Seconds: builds and steps take from a second to hours.
BUILD_BUCKETS = (1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0, 7200.0)
QUEUE_BUCKETS = (0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0)
# Store calls: sub-millisecond (memory, SQLite) to seconds (a struggling server).
STORE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
OTHER = "_other"  # the label value once a label's cap is reached


def require_prometheus() -> Any:
    """The prometheus_client module, or MissingDependencyError naming the extra."""
    try:
        import prometheus_client
    except ImportError as exc:
        from sauci.exceptions import MissingDependencyError

        raise MissingDependencyError("prometheus_client", "metrics") from exc
    return prometheus_client


class _Capped:
    """Label values seen so far, at most ``limit``; later ones become ``_other``.

    Repository and worker names are bounded in practice (registered
    repositories, running workers) but not by construction: a cap keeps one
    misbehaving trigger from growing the time series without end.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, value: str) -> str:
        if value in self._seen:
            return value
        with self._lock:
            if len(self._seen) >= self.limit:
                return OTHER
            self._seen.add(value)
        return value


class Metrics:
    """SauCI's metrics in a registry of their own, fed by :meth:`on_event`.

    ``store`` (optional) is read at scrape time for the queue depth, the
    oldest queued build's age and the workers by state. ``max_labels`` caps
    the distinct repositories and workers that get a time series of their own.
    """

    def __init__(self, *, store: Any = None, max_labels: int = 200) -> None:
        prom = require_prometheus()
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.prometheus = prom
        self.registry = CollectorRegistry(auto_describe=True)
        reg = self.registry
        # Every metric goes into this registry, not prometheus_client's global one.
        counter = functools.partial(Counter, registry=reg)
        gauge = functools.partial(Gauge, registry=reg)
        histogram = functools.partial(Histogram, registry=reg)
        self._repo = _Capped(max_labels)
        self._worker = _Capped(max_labels)
        self.builds = counter(
            "sauci_builds", "Builds that ended, by repository and status.", ["repo", "status"]
        )
        self.build_duration = histogram(
            "sauci_build_duration_seconds",
            "Run time of ended builds (started to finished).",
            buckets=BUILD_BUCKETS,
        )
        self.step_duration = histogram(
            "sauci_step_duration_seconds", "Run time of ended steps.", buckets=BUILD_BUCKETS
        )
        self.queue_wait = histogram(
            "sauci_queue_wait_seconds",
            "Time builds waited in the queue before they started.",
            buckets=QUEUE_BUCKETS,
        )
        self.running_builds = gauge("sauci_running_builds", "Builds running in this process.")
        self.running_steps = gauge("sauci_running_steps", "Steps running in this process.")
        self.log_bytes = counter("sauci_log_bytes", "Bytes of step output recorded.")
        self.steps_ended = counter(
            "sauci_steps_ended",
            "Steps that SauCI ended, by reason (timeout, out_of_memory, "
            "process_limit, log_limit, cancelled).",
            ["reason"],
        )
        for reason in EndedBy:
            self.steps_ended.labels(reason=reason.value)  # present at 0 from the start
        self.store_seconds = histogram(
            "sauci_store_operation_seconds",
            "Latency of store calls, by back end and operation.",
            ["backend", "operation"],
            buckets=STORE_BUCKETS,
        )
        self.store_errors = counter(
            "sauci_store_errors",
            "Store calls that raised, by back end and operation.",
            ["backend", "operation"],
        )
        self.worker_heartbeats = counter(
            "sauci_worker_heartbeats", "Heartbeats received from workers.", ["worker"]
        )
        self.worker_last_heartbeat = gauge(
            "sauci_worker_last_heartbeat_timestamp_seconds",
            "Unix time of each worker's last heartbeat.",
            ["worker"],
        )
        self.builds_lost = counter(
            "sauci_builds_lost", "Builds ended errored because their worker stopped heartbeating."
        )
        self.workers_launched = counter(
            "sauci_workers_launched",
            "Workers the server started on demand (sauci serve --launch-workers).",
        )
        self.worker_launch_failures = counter(
            "sauci_worker_launch_failures",
            "Worker launches that failed: not started, or ended before coming online.",
        )
        self.store = store
        if store is not None:
            reg.register(StoreCollector(store))
        # What started in this process: a build that errored before it started
        # (checkout failed) or a step reused from an earlier build ends without
        # having started, and must not move the running gauges.
        self._running: set[tuple[int, str | None]] = set()
        self._lock = threading.Lock()

    def _started(self, key: tuple[int, str | None]) -> None:
        with self._lock:
            self._running.add(key)

    def _ended(self, key: tuple[int, str | None]) -> bool:
        with self._lock:
            if key in self._running:
                self._running.discard(key)
                return True
            return False

    # -- the hub -------------------------------------------------------------

    def on_event(self, name: str, fields: dict[str, Any]) -> None:
        """A listener for :func:`sauci.core.events.subscribe`; cheap, never raises on odd input."""
        handler = _HANDLERS.get(name)
        if handler is None:
            return
        try:
            handler(self, fields)
        except Exception:  # a metric must never reach the build that emitted the event
            log.exception("metrics_event_failed", hub_event=name)

    def _build_started(self, fields: dict[str, Any]) -> None:
        build = fields["build"]
        self._started((build.id, None))
        self.running_builds.inc()
        if build.started_at and build.queued_at:
            self.queue_wait.observe(max(0.0, build.started_at - build.queued_at))

    def _build_finished(self, fields: dict[str, Any]) -> None:
        build = fields["build"]
        if self._ended((build.id, None)):
            self.running_builds.dec()
        self.builds.labels(repo=self._repo(build.repo), status=Status(build.status).value).inc()
        if build.duration is not None:
            self.build_duration.observe(max(0.0, build.duration))

    def _step_started(self, fields: dict[str, Any]) -> None:
        step = fields["step"]
        self._started((step.build_id, step.name))
        self.running_steps.inc()

    def _step_finished(self, fields: dict[str, Any]) -> None:
        step = fields["step"]
        # Reused and skipped steps did not run: they count as ended, not as run time.
        if self._ended((step.build_id, step.name)):
            self.running_steps.dec()
            if step.duration is not None:
                self.step_duration.observe(max(0.0, step.duration))
        if step.log_bytes:
            self.log_bytes.inc(step.log_bytes)
        if step.ended_by is not None:
            self.steps_ended.labels(reason=EndedBy(step.ended_by).value).inc()

    def _worker_heartbeat(self, fields: dict[str, Any]) -> None:
        worker = fields["worker"]
        name = self._worker(worker.name)
        self.worker_heartbeats.labels(worker=name).inc()
        self.worker_last_heartbeat.labels(worker=name).set(worker.heartbeat_at or time.time())

    def _build_lost(self, fields: dict[str, Any]) -> None:
        self.builds_lost.inc()

    def _worker_launched(self, fields: dict[str, Any]) -> None:
        self.workers_launched.inc()

    def _worker_launch_failed(self, fields: dict[str, Any]) -> None:
        self.worker_launch_failures.inc()

    # -- store latency ---------------------------------------------------------

    def instrument(self, store: Any) -> InstrumentedStore:
        """``store`` behind a proxy that times every Store call into this registry."""
        return InstrumentedStore(store, self)

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        return render(self.registry)

    def serve(
        self, port: int, host: str = "127.0.0.1", *, ready: Callable[[], Any] | None = None
    ) -> Any:
        """Serve ``/metrics``, ``/healthz`` and (with ``ready``) ``/readyz`` on
        ``host:port`` in a daemon thread (:mod:`sauci.monitoring.probes`); returns
        the HTTP server (``.server_port``, ``.shutdown()``). Port 0 picks a free one."""
        from sauci.monitoring.probes import serve_probes

        return serve_probes(self.registry, port, host, ready=ready)


_HANDLERS: dict[str, Callable[[Metrics, dict[str, Any]], None]] = {
    "build_started": Metrics._build_started,
    "build_finished": Metrics._build_finished,
    "step_started": Metrics._step_started,
    "step_finished": Metrics._step_finished,
    "worker_heartbeat": Metrics._worker_heartbeat,
    "build_lost": Metrics._build_lost,
    "worker_launched": Metrics._worker_launched,
    "worker_launch_failed": Metrics._worker_launch_failed,
}


def render(registry: Any) -> tuple[bytes, str]:
    from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

    return generate_latest(registry), CONTENT_TYPE_LATEST
