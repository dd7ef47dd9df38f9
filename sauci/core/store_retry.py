"""A store that waits out an outage: every call that fails because the store
cannot be reached is tried again, with exponential back-off (tenacity), until
the store has been unreachable for ``deadline`` seconds; then the error is a
:class:`StoreUnavailableError`. Errors that are answers (no such build, a
conflict, a refused write) are raised at once.

Whether a StoreError means "unreachable" is read from the backend error it
was raised from (``__cause__``): a connection refused or reset, a timeout, a
database that is starting or shutting down. Core imports no backend, so this
is decided by the error's class names and by OSError.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from sauci._logging import get_logger
from sauci.exceptions import NotFoundError, StoreError

__all__ = ["RetryingStore", "StoreUnavailableError", "is_unreachable"]

log = get_logger(__name__)

# Backend error classes that say "the server is not there (now)": redis-py,
# SQLAlchemy / DBAPI (psycopg), confluent-kafka.
_UNREACHABLE = frozenset(
    {
        "ConnectionError",
        "TimeoutError",
        "BusyLoadingError",
        "OperationalError",
        "InterfaceError",
        "DisconnectionError",
        "AdminShutdown",
        "CannotConnectNow",
        "KafkaException",
    }
)


def _once(store: Any, add_event: Callable[..., Any]) -> Callable[..., Any]:
    def add(event: Any) -> None:
        want = _event_key(event)
        recent = store.list_events(build_id=event.build_id, limit=_EVENT_LOOKBACK)
        if not any(_event_key(e) == want for e in recent):
            add_event(event)

    return add


def _event_key(event: Any) -> tuple[Any, ...]:
    data = json.dumps(dict(event.data), sort_keys=True)
    return (event.kind, float(event.at), event.build_id, event.actor, data)


# How many of the newest events a retried add_event looks through for itself.
_EVENT_LOOKBACK = 200


class StoreUnavailableError(StoreError):
    """The store stayed unreachable past the deadline."""


def is_unreachable(exc: BaseException) -> bool:
    """True when ``exc`` (a StoreError) was caused by the store being out of reach."""
    if isinstance(exc, NotFoundError) or not isinstance(exc, StoreError):
        return False
    cause: BaseException | None = exc.__cause__
    seen = 0
    while cause is not None and seen < 5:
        if isinstance(cause, OSError):
            return True
        if any(c.__name__ in _UNREACHABLE for c in type(cause).__mro__):
            return True
        cause, seen = cause.__cause__ or getattr(cause, "orig", None), seen + 1
    return False


class RetryingStore:
    """Wraps a store; its methods retry while the store is unreachable.

    ``direct`` is the store itself, for callers that must not block (the log
    sink tries again on its own schedule, keeping the bytes on disk meanwhile).
    """

    def __init__(
        self,
        store: Any,
        *,
        deadline: float,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.direct = store
        self.deadline = deadline
        self._sleep = sleep

    def __getattr__(self, name: str) -> Any:
        value = getattr(self.direct, name)
        if name.startswith("_") or not callable(value):
            return value

        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return value(*args, **kwargs)
            except StoreError as exc:
                if not is_unreachable(exc):
                    raise
                return self._retry(name, value, args, kwargs, exc)

        return call

    def _retry(
        self, name: str, method: Callable[..., Any], args: Any, kwargs: Any, first: StoreError
    ) -> Any:
        # tenacity is imported only once a store call has failed: sauci run's
        # start-up does not pay for it.
        import tenacity

        log.warning("store_unavailable_retrying", call=name, error=str(first))
        if name == "add_event":
            # An event has no id: the write that failed may have landed with
            # only its answer lost, so each try first looks for it.
            method = _once(self.direct, method)
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception(is_unreachable),
            wait=tenacity.wait_exponential(multiplier=0.2, max=5.0),
            stop=tenacity.stop_before_delay(self.deadline),
            sleep=self._sleep,
            reraise=True,
        )
        try:
            return retrying(method, *args, **kwargs)
        except StoreError as exc:
            if not is_unreachable(exc):
                raise
            raise StoreUnavailableError(
                f"store unavailable for more than {self.deadline:g} s ({name}): {exc}"
            ) from exc
