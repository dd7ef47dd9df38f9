"""In-process notifications of state changes: one hub, many listeners.

The engine calls :func:`emit` at every state change (a build queued, started,
finished; a step started, finished; a worker's heartbeat). Metrics, usage
analytics and SauCI's own structured log subscribe with :func:`subscribe`
instead of being wired into the engine, so the engine stays the same with or
without them, and an embedding program can add its own listener.

A listener is called on the emitting thread and must be quick (queue work
for later, as the analytics sink does). An exception in a listener is logged
once per listener and never reaches the build.

Events and their fields (objects from :mod:`sauci.core.models`):

======================  ==========================================================
build_queued            build
build_started           build (claimed, ``started_at`` set)
build_finished          build (final record)
step_started            build, step (StepRun, running)
step_finished           build, step (StepRun, final)
worker_heartbeat        worker (Worker)
build_lost              build (ended errored: its worker stopped heartbeating)
runner_slot_free        runner (its name), build (the one that left the slot), refilled
                        (True when the runner claimed the next build for it at once)
worker_launched         launched (the name of a worker the server started on demand)
worker_launch_failed    launched (its name), why, retry_in (seconds of back-off)
======================  ==========================================================
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["EventHub", "Listener", "emit", "hub", "subscribe"]

# Plain stdlib logging: sauci._logging subscribes its state-change log to this
# hub, so this module does not import it back.
log = logging.getLogger(__name__)

Listener = Callable[[str, dict[str, Any]], None]


class EventHub:
    """Listeners and the events sent to them. The process has one, :data:`hub`;
    :func:`subscribe` and :func:`emit` are its methods."""

    def __init__(self) -> None:
        self._listeners: tuple[Listener, ...] = ()
        self._failed: set[int] = set()
        self._lock = threading.Lock()

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(name, fields)`` on every event; returns the unsubscribe function."""
        with self._lock:
            self._listeners = (*self._listeners, listener)

        def unsubscribe() -> None:
            with self._lock:
                self._listeners = tuple(x for x in self._listeners if x is not listener)

        return unsubscribe

    def emit(self, name: str, **fields: Any) -> None:
        """Tell every listener; costs one tuple check when there are none."""
        listeners = self._listeners
        if not listeners:
            return
        for listener in listeners:
            try:
                listener(name, fields)
            except Exception:  # a broken listener must never break a build
                key = id(listener)
                if key not in self._failed:
                    self._failed.add(key)
                    log.exception(
                        "event_listener_failed",
                        extra={"sauci": {"hub_event": name, "listener": repr(listener)}},
                    )


hub = EventHub()
subscribe = hub.subscribe
emit = hub.emit
