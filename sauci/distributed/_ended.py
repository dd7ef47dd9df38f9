""" "A build ended on worker W": a broker broadcast that wakes the server at once.

A worker records a build's end in the store, as always, and then publishes
one small message on the fanout exchange ``sauci.ended``; every server
listening (each on a queue of its own, deleted with its connection) wakes
its loop, sees the slot free in the store and places the next build there
and then, instead of at its next safety round. The message is only a
wake-up: nothing depends on it for correctness. A lost one (a broker
restart, a server starting) costs at most the wait for that round.

Kombu's own parts do the work: a fanout :class:`kombu.Exchange` (Redis
carries it with PUBLISH/SUBSCRIBE, AMQP with a fanout exchange), and a
:class:`kombu.mixins.ConsumerMixin` thread, which reconnects after a broker
restart by itself.
"""

from __future__ import annotations

import queue
import threading
import uuid
from collections.abc import Callable
from typing import Any

from sauci._logging import get_logger

__all__ = ["ENDED_EXCHANGE", "Announcer", "EndWatcher", "announce_end"]

log = get_logger(__name__)

ENDED_EXCHANGE = "sauci.ended"


def _exchange() -> Any:
    from kombu import Exchange

    return Exchange(ENDED_EXCHANGE, type="fanout", durable=False, auto_delete=True)


def announce_end(app: Any, build_id: int, worker: str) -> None:
    """Tell every listening server that ``build_id`` ended on ``worker`` (its slot is
    free). Never raises: a message that cannot go costs the server's safety round."""
    try:
        with app.producer_or_acquire() as producer:
            producer.publish(
                {"build": build_id, "worker": worker},
                exchange=_exchange(),
                routing_key="",
                serializer="json",
                declare=[_exchange()],
                retry=False,
                delivery_mode=1,  # transient: a wake-up is worth nothing later
            )
    except Exception as exc:  # any broker failure: the round covers it
        log.info("build_end_not_announced", build=build_id, error=str(exc))


class Announcer:
    """A worker's announcements, published by a thread of their own: the slot's
    thread returns at once, so Celery acknowledges its message and hands the
    slot the next one waiting (sauci.distributed._ahead) without waiting for
    the publish (4-9 ms on two busy cores). Called with a build id.

    The publish waits until a slot of the worker took its next build
    (:meth:`slot_taken`), or ``grace`` seconds when none does. Kombu's publish
    is 2-7 ms of Python, which the freed slot's passage (the task's return,
    Celery's acknowledgement, the hand-over of the message waiting ahead,
    the claim) waited behind for the interpreter lock; the server needs the
    end then only to send the worker its next build ahead, which is wanted
    when the builds running now end. A worker that had no build ahead waits
    ``grace`` longer for the server to place one; so a build ended with
    ``wait=False`` (a worker with a slot free besides this one: the server
    sends builds ahead only to a worker whose slots are all taken,
    sauci.distributed._ahead, so no message waits for this slot) is published
    at once. That is the end the server waits for to start a heavy build on a
    worker it drained: 20 ms of grace there were 20 ms on each such start.
    """

    def __init__(self, app: Any, worker: str, *, grace: float = 0.02) -> None:
        self._app = app
        self._worker = worker
        self.grace = grace
        self._queue: queue.SimpleQueue[tuple[int, bool] | None] = queue.SimpleQueue()
        self._taken = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sauci-announce", daemon=True)
        self._thread.start()

    def __call__(self, build_id: int, *, wait: bool = True) -> None:
        """Publish that ``build_id`` ended; ``wait``: hold it back until a slot
        of this worker took its next build (or ``grace`` s), False: now."""
        self._taken.clear()
        self._queue.put((build_id, wait))

    def slot_taken(self) -> None:
        """A slot of this worker claimed its next build: publish what waits now."""
        self._taken.set()

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            build_id, wait = item
            if wait:
                self._taken.wait(self.grace)
            announce_end(self._app, build_id, self._worker)

    def close(self, timeout: float = 2.0) -> None:
        """Publish what is queued (for at most ``timeout`` s), then stop."""
        self._queue.put(None)
        self._taken.set()
        self._thread.join(timeout)


class EndWatcher:
    """The server's listener: calls ``on_end(build_id)`` for each end a worker announces."""

    def __init__(self, app: Any, on_end: Callable[[int], None]) -> None:
        from kombu import Queue
        from kombu.mixins import ConsumerMixin

        self.on_end = on_end
        queue = Queue(
            f"{ENDED_EXCHANGE}.{uuid.uuid4().hex[:12]}",
            _exchange(),
            durable=False,
            exclusive=True,
            auto_delete=True,
        )
        watcher = self

        class _Consumer(ConsumerMixin):  # type: ignore[misc]
            connect_max_retries = None  # a broker restart: try again until stopped

            def __init__(self, connection: Any) -> None:
                self.connection = connection

            def get_consumers(self, consumer: Any, channel: Any) -> list[Any]:
                return [consumer(queues=[queue], callbacks=[watcher._received], accept=["json"])]

            def on_connection_error(self, exc: Any, interval: float) -> None:
                if self.should_stop:  # stopped while the broker is down: retry no more
                    raise exc
                log.info("end_watch_reconnecting", error=str(exc), retry_in=interval)

        self._consumer = _Consumer(app.connection_for_read())
        self._thread = threading.Thread(target=self._run, name="sauci-end-watch", daemon=True)

    def start(self) -> EndWatcher:
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            self._consumer.run()
        except Exception as exc:  # the safety round still places builds
            if not self._consumer.should_stop:
                log.warning("end_watch_stopped", error=str(exc))

    def _received(self, body: Any, message: Any) -> None:
        message.ack()
        try:
            build_id = int(body["build"])
        except (TypeError, KeyError, ValueError):
            return
        self.on_end(build_id)

    def stop(self, timeout: float = 2.0) -> None:
        self._consumer.should_stop = True
        self._thread.join(timeout)
