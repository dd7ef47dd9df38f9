"""Metrics read from and around the store: queue depth and workers at scrape time,
and a proxy that times every Store call."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from sauci._logging import get_logger
from sauci.core.models import Status
from sauci.typing import STORE_OPERATIONS

__all__ = ["InstrumentedStore", "StoreCollector", "backend_name"]

log = get_logger(__name__)

_BACKENDS = {
    "MemoryStore": "memory",
    "SQLiteStore": "sqlite",
    "SQLAlchemyStore": "sqlalchemy",
    "RedisStore": "redis",
    "DuckDBStore": "duckdb",
    "StreamStore": "stream",
    "TeeStore": "tee",
}


def backend_name(store: Any) -> str:
    """A short, bounded name of a store's back end (its dialect for SQLAlchemy)."""
    explicit = getattr(store, "backend", None)
    if isinstance(explicit, str) and explicit:
        return explicit
    name = type(store).__name__
    backend = _BACKENDS.get(name)
    if backend == "sqlalchemy":
        engine = getattr(store, "engine", None) or getattr(store, "_engine", None)
        dialect = getattr(getattr(engine, "dialect", None), "name", None)
        if isinstance(dialect, str):
            return dialect
    return backend or name.removesuffix("Store").lower() or "unknown"


class StoreTimers(Protocol):
    """Where :class:`InstrumentedStore` records its calls (a Metrics has them)."""

    store_seconds: Any  # a prometheus Histogram labelled backend, operation
    store_errors: Any  # a prometheus Counter labelled the same


class StoreCollector:
    """Queue depth, the oldest queued build's age, workers by state and each
    worker's heartbeat age, read at scrape time.

    A store that fails leaves these out of the scrape (and sets
    ``sauci_store_up`` to 0) rather than failing the whole scrape.
    """

    def __init__(self, store: Any) -> None:
        self.store = store

    def describe(self) -> Iterable[Any]:
        return []  # not known before a scrape; keeps registration free of store calls

    def collect(self) -> Iterable[Any]:
        from prometheus_client.core import GaugeMetricFamily

        up = GaugeMetricFamily("sauci_store_up", "1 when the store answered this scrape.")
        try:
            stats = self.store.build_stats()
            queued = self.store.list_builds(status=Status.QUEUED, limit=1000)
        except Exception as exc:  # a scrape must not fail because the store does
            log.warning("metrics_store_unavailable", error=f"{type(exc).__name__}: {exc}")
            up.add_metric([], 0.0)
            yield up
            return
        up.add_metric([], 1.0)
        yield up
        by_status = stats.get("by_status", {}) if isinstance(stats, dict) else {}
        depth = by_status.get("queued", len(queued))
        yield GaugeMetricFamily(
            "sauci_queue_depth", "Builds waiting in the queue (the store's count).", value=depth
        )
        oldest = min((b.queued_at for b in queued if b.queued_at), default=None)
        yield GaugeMetricFamily(
            "sauci_queue_oldest_age_seconds",
            "How long the oldest queued build has waited (0 when the queue is empty).",
            value=max(0.0, time.time() - oldest) if oldest else 0.0,
        )
        workers = GaugeMetricFamily("sauci_workers", "Recorded workers by state.", labels=["state"])
        try:
            listed = self.store.list_workers()
        except Exception:  # a store without workers yet: leave the family empty
            listed = []
        counts = {"online": 0, "stopping": 0, "offline": 0}
        for worker in listed:
            counts[worker.state] = counts.get(worker.state, 0) + 1
        for state, count in sorted(counts.items()):
            workers.add_metric([state], count)
        yield workers
        # What the server sees of each worker, read from the store: unlike the
        # worker's own gauges, it is still scraped when the worker is dead.
        age = GaugeMetricFamily(
            "sauci_worker_heartbeat_age_seconds",
            "Seconds since each worker not stopped on purpose last wrote its heartbeat"
            " (read by the server from the store).",
            labels=["worker"],
        )
        now = time.time()
        for worker in listed:
            if worker.state != "offline":
                age.add_metric([worker.name], max(0.0, now - worker.heartbeat_at))
        yield age


class InstrumentedStore:
    """Any Store, with each protocol call timed into ``sauci_store_operation_seconds``.

    Attribute access is passed through, so the proxy satisfies whatever the
    wrapped store does (``capabilities``, optional methods); only the Store
    protocol's operations are timed, which keeps the ``operation`` label bounded.
    """

    def __init__(self, store: Any, metrics: StoreTimers) -> None:
        self._store = store
        self._backend = backend_name(store)
        self._metrics = metrics
        self._timed: dict[str, Any] = {}

    @property
    def wrapped(self) -> Any:
        return self._store

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._store, name)
        if name not in STORE_OPERATIONS or not callable(value):
            return value
        timed = self._timed.get(name)
        if timed is None:
            timed = self._timer(name)
            self._timed[name] = timed
        return timed

    def _timer(self, operation: str) -> Callable[..., Any]:
        labels = {"backend": self._backend, "operation": operation}
        histogram = self._metrics.store_seconds.labels(**labels)
        errors = self._metrics.store_errors.labels(**labels)
        store = self._store

        def call(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return getattr(store, operation)(*args, **kwargs)
            except Exception:
                errors.inc()
                raise
            finally:
                histogram.observe(time.perf_counter() - started)

        call.__name__ = operation
        return call

    def close(self) -> None:
        self._store.close()

    def __enter__(self) -> InstrumentedStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"InstrumentedStore({self._store!r})"
