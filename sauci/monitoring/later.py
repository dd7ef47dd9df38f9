"""Metrics made once a server has said it is ready, with nothing lost before.

Importing prometheus_client is 20-28 ms of ``sauci serve``'s start on a slow
machine: its package imports its HTTP exposition (``http.server`` and with it
``email``, ``http.client`` and ``ssl``; ``urllib.request``, ``wsgiref``), and
nobody can read a metric before the web UI is up. :class:`LaterMetrics`
stands in for a :class:`~sauci.monitoring.metrics.Metrics` until
:meth:`LaterMetrics.make`: the hub's events and the store's call timings are
kept, then replayed into the new registry in the order they came, and from
then on passed straight to it.
"""

from __future__ import annotations

import threading
from typing import Any

__all__ = ["LaterMetrics"]


class _LaterChild:
    """One labelled histogram or counter: values kept until it is bound."""

    def __init__(self, owner: LaterMetrics, family: str, labels: dict[str, str]) -> None:
        self._owner = owner
        self.family = family
        self.labels = labels
        self.kept: list[tuple[str, float]] = []
        self.real: Any = None

    def _record(self, method: str, value: float) -> None:
        real = self.real
        if real is None:
            with self._owner._lock:
                real = self.real
                if real is None:
                    self.kept.append((method, value))
                    return
        getattr(real, method)(value)

    def observe(self, value: float) -> None:
        self._record("observe", value)

    def inc(self, amount: float = 1.0) -> None:
        self._record("inc", amount)


class _LaterFamily:
    """``store_seconds`` or ``store_errors`` as InstrumentedStore asks for them."""

    def __init__(self, owner: LaterMetrics, name: str) -> None:
        self._owner = owner
        self._name = name

    def labels(self, **labels: str) -> Any:
        owner = self._owner
        with owner._lock:
            if owner.metrics is None:
                child = _LaterChild(owner, self._name, labels)
                owner._children.append(child)
                return child
        return getattr(owner.metrics, self._name).labels(**labels)


class LaterMetrics:
    """A Metrics to be: an event listener and an InstrumentedStore's timers
    that keep what they are given until :meth:`make` makes the Metrics."""

    def __init__(self, *, store: Any = None) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._events: list[tuple[str, dict[str, Any]]] = []
        self._children: list[_LaterChild] = []
        self.metrics: Any = None
        self.store_seconds = _LaterFamily(self, "store_seconds")
        self.store_errors = _LaterFamily(self, "store_errors")

    def on_event(self, name: str, fields: dict[str, Any]) -> None:
        """A hub listener: kept until :meth:`make`, then passed on."""
        with self._lock:
            metrics = self.metrics
            if metrics is None:
                self._events.append((name, fields))
                return
        metrics.on_event(name, fields)

    def make(self) -> Any:
        """The Metrics (prometheus_client imported now), fed what came before; once."""
        if self.metrics is not None:
            return self.metrics
        from sauci.monitoring.metrics import Metrics

        made = Metrics(store=self._store)
        with self._lock:  # events and timings that come meanwhile wait, then follow
            for name, fields in self._events:
                made.on_event(name, fields)
            for child in self._children:
                real = getattr(made, child.family).labels(**child.labels)
                for method, value in child.kept:
                    getattr(real, method)(value)
                child.kept.clear()
                child.real = real
            self._events.clear()
            self._children.clear()
            self.metrics = made
        return made
