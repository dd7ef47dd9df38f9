"""The Celery app: one task, ``sauci.run_build(build_id)``, and no result backend.

Results live in the store, never in Celery. The broker settings that make a
build survive a dead worker:

- ``task_acks_late``: a message is acknowledged when its task returns, not
  when it is received, so a worker killed before it claimed the build leaves
  the message to the broker, which hands it to another worker.
- ``task_reject_on_worker_lost``: the same when a pool process dies.
- ``worker_prefetch_multiplier = 1``: a worker holds no more messages than it
  has free slots, so a busy worker does not sit on builds an idle one could run.
  The one build the server sends a full worker ahead (:mod:`._ahead`) waits in
  the broker until a slot frees, and is sent to an idle worker as well.
- ``visibility_timeout`` (Redis and SQS): how long an unacknowledged message
  stays invisible before the broker gives it to another worker. It must be
  longer than a build; nothing depends on it for correctness (a message whose
  build is no longer queued is dropped; a build whose worker died is handed on
  by the server's heartbeat check, not by redelivery).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from sauci._logging import get_logger
from sauci.exceptions import ConfigError, MissingDependencyError, SauCIError

__all__ = ["TASK", "BrokerClient", "check_broker_url", "make_app", "safe_url", "thread_pool"]

log = get_logger(__name__)

TASK = "sauci.run_build"
NOT_TAKEN = "not taken: worker stopping"  # WorkerRuntime.run: the message goes back


def safe_url(url: str) -> str:
    """``url`` with any password replaced by ``***``, for messages."""
    try:
        parts = urlsplit(url)
    except ValueError:  # not parseable: show the scheme only
        return url.split("://", 1)[0] + "://..."
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return parts._replace(netloc=netloc).geturl()
    return url


def _import_celery() -> Any:
    try:
        import celery
    except ImportError as exc:
        raise MissingDependencyError(exc.name or "celery", "celery") from exc
    return celery


def check_broker_url(url: str) -> str:
    """The broker URL if kombu knows its scheme; ConfigError saying why not."""
    if not url or "://" not in url:
        raise ConfigError(
            f"broker URL {url!r} is not a URL; expected e.g. redis://HOST:6379/0 "
            "or amqp://USER:PASSWORD@HOST:5672//"
        )
    _import_celery()
    from kombu.transport import TRANSPORT_ALIASES

    scheme = url.split("://", 1)[0].split("+", 1)[0]
    if scheme not in TRANSPORT_ALIASES:
        import difflib

        hint = difflib.get_close_matches(scheme, list(TRANSPORT_ALIASES), n=1)
        extra = f"; did you mean {hint[0]!r}?" if hint else ""
        raise ConfigError(
            f"broker URL {safe_url(url)}: unknown scheme {scheme!r}{extra} "
            "(SauCI is tested with redis://; amqp:// works the same way)"
        )
    from kombu.utils.url import parse_url

    try:
        parse_url(url)  # the port, an IPv6 address: what kombu would fail on at connect
    except ValueError as exc:
        raise ConfigError(f"broker URL {safe_url(url)}: {exc}") from exc
    return url


def make_app(broker: str, *, visibility_timeout: float = 3600.0, runtime: Any = None) -> Any:
    """A Celery app on ``broker`` with SauCI's one task.

    ``runtime`` (a :class:`~sauci.distributed.WorkerRuntime`) is what the task
    calls on a worker; the server's app has none and only sends.
    """
    check_broker_url(broker)
    celery = _import_celery()
    # fixups=[]: Celery's Django fixup, which it loads whenever
    # DJANGO_SETTINGS_MODULE is set, would set Django up inside the worker and
    # fail on a settings module it cannot import; SauCI's worker talks to the
    # store, never to Django.
    app = celery.Celery("sauci", broker=broker, set_as_current=False, fixups=[])
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        worker_disable_rate_limits=True,  # none is set: skip Celery's token buckets per task
        task_serializer="json",
        accept_content=["json"],
        result_backend=None,
        task_ignore_result=True,
        task_default_queue="sauci",
        task_create_missing_queues=True,
        broker_transport_options={"visibility_timeout": visibility_timeout},
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        worker_enable_remote_control=False,  # no pidbox queues: nothing uses them
    )
    app.sauci_runtime = runtime

    # Not shared: a shared task is added to every app made later in the process,
    # and the last one made would run this app's builds with its own runtime.
    @app.task(name=TASK, ignore_result=True, shared=False)  # type: ignore[misc]
    def run_build(build_id: int) -> str:
        if app.sauci_runtime is None:
            raise SauCIError("this process is not a sauci worker")
        result = str(app.sauci_runtime.run(int(build_id)))
        if result == NOT_TAKEN:
            # Back to the broker at once, for another worker: acknowledged, the
            # message would be gone and the build would wait for the server's
            # re-send (2 x lost_timeout).
            from celery.exceptions import Reject

            raise Reject(result, requeue=True)
        return result

    return app


def thread_pool(runtime: Any) -> Any:
    """Celery's threads pool, for ``runtime`` (a WorkerRuntime).

    A cold shutdown asks the pool to end each running task; threads cannot be
    killed (Celery's threads pool raises NotImplementedError, and then waits for
    every build to finish), so the runtime hands its builds back instead: their
    steps end here and the server hands them on as lost.
    """
    from celery.concurrency.thread import TaskPool

    class SauCIThreadPool(TaskPool):  # type: ignore[misc]
        def terminate_job(self, pid: Any, signal: Any = None) -> None:
            runtime.hand_back()

    return SauCIThreadPool


class BrokerClient:
    """The server's side of the broker: send a build id to a queue."""

    def __init__(self, broker: str, *, visibility_timeout: float = 3600.0) -> None:
        self.url = broker
        self.app = make_app(broker, visibility_timeout=visibility_timeout)

    def check(self, timeout: float = 5.0) -> None:
        """Connect once; SauCIError naming the broker when it cannot be reached."""
        check_connection(self.app, timeout=timeout)

    def send(self, build_id: int, queue: str) -> None:
        from kombu.exceptions import KombuError

        try:
            self.app.send_task(
                TASK,
                args=[build_id],
                queue=queue,
                retry=True,
                retry_policy={
                    "max_retries": 2,
                    "interval_start": 0,
                    "interval_step": 0.2,
                    "interval_max": 0.5,
                },
            )
        except (KombuError, OSError) as exc:
            raise SauCIError(
                f"cannot send build {build_id} to the broker at {safe_url(self.url)}: {exc}"
            ) from exc

    def watch_ended(self, on_end: Callable[[int], None]) -> Callable[[], None]:
        """Call ``on_end(build_id)`` the moment a worker announces a build's end
        (:mod:`sauci.distributed._ended`); returns the stop."""
        from sauci.distributed._ended import EndWatcher

        return EndWatcher(self.app, on_end).start().stop

    def close(self) -> None:
        self.app.close()


def check_connection(app: Any, *, timeout: float = 5.0) -> None:
    """Raise SauCIError (no traceback for the user) when the broker is unreachable."""
    from kombu.exceptions import KombuError

    url = app.conf.broker_url
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, timeout=timeout)
    except ValueError as exc:  # a transport's own check, e.g. Redis's database number
        raise ConfigError(f"broker URL {safe_url(url)}: {exc}") from exc
    except (KombuError, OSError) as exc:
        raise SauCIError(f"cannot reach the broker at {safe_url(url)}: {exc}") from exc
