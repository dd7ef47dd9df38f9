"""The Mixpanel sink, through the official ``mixpanel`` library (the ``mixpanel`` extra).

The token comes only from the environment (``SAUCI_MIXPANEL_TOKEN``), never
from a file in a repository. Events are formatted by ``mixpanel.Mixpanel.track``
and sent in batches of up to 50 (the API's limit) by the library's
``Consumer`` to ``/track`` on the API host, from a background thread. The
host is a setting (``SAUCI_MIXPANEL_HOST``: a name such as
``api-eu.mixpanel.com`` for HTTPS, or a full ``http://127.0.0.1:8080`` URL,
which the tests use for a local stand-in). Retries are SauCI's own (bounded,
with back-off), so they work the same over HTTP and HTTPS. What is unsent at
exit is kept in ``<data dir>/analytics/`` for the next process (``_spool.py``).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sauci.monitoring.analytics._base import AnalyticsEvent, BatchSender
from sauci.monitoring.analytics._spool import Spool

__all__ = ["DEFAULT_HOST", "MixpanelSink", "mixpanel_from_env"]

DEFAULT_HOST = "api.mixpanel.com"


class _Collect:
    """A consumer that keeps the messages ``Mixpanel.track`` formats, for one batch."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def send(self, endpoint: str, json_message: str, *args: Any, **kwargs: Any) -> None:
        self.messages.append(json_message)


class MixpanelSink:
    """Sends events to Mixpanel in batches, off the caller's thread."""

    name = "mixpanel"

    def __init__(
        self,
        token: str,
        *,
        host: str = DEFAULT_HOST,
        timeout: float = 5.0,
        batch_size: int = 50,
        **sender: Any,
    ) -> None:
        if not token:
            raise ValueError("a Mixpanel token is required")
        self._token = token
        self.host = host
        self.timeout = timeout
        self._client: Any = None
        self._consumer: Any = None
        self.sender = BatchSender(
            self._deliver, name=self.name, batch_size=min(50, batch_size), **sender
        )

    def _setup(self) -> None:
        # Imported on the sender's thread: `requests` costs ~100 ms, which no
        # command's start-up should pay.
        from mixpanel import Consumer, Mixpanel

        if "://" in self.host:
            consumer = Consumer(
                events_url=f"{self.host.rstrip('/')}/track",
                request_timeout=self.timeout,
                retry_limit=0,
            )
        else:
            consumer = Consumer(api_host=self.host, request_timeout=self.timeout, retry_limit=0)
        self._consumer = consumer
        self._collect = _Collect()
        self._client = Mixpanel(self._token, consumer=self._collect)

    def _deliver(self, batch: list[AnalyticsEvent]) -> None:
        if self._client is None:
            self._setup()
        collect = self._collect
        collect.messages.clear()
        for event in batch:
            self._client.track(
                event.distinct_id,
                event.name,
                {**event.properties, "time": event.at, "$insert_id": event.insert_id},
            )
        payload = "[" + ",".join(collect.messages) + "]"
        self._consumer.send("events", payload)

    def send(self, event: AnalyticsEvent) -> None:
        self.sender.put(event)

    def close(self, timeout: float = 0.2) -> None:
        self.sender.close(timeout)


def mixpanel_from_env(
    environ: Mapping[str, str] | None = None, *, data_dir: Path | None = None, **sender: Any
) -> MixpanelSink | None:
    """A MixpanelSink when ``SAUCI_MIXPANEL_TOKEN`` is set, else None (the default: off).

    With ``data_dir``, events unsent at exit are kept in
    ``<data_dir>/analytics/mixpanel-<id>.jsonl`` (one file per host and token,
    so a changed token never sends old events to a new project)."""
    env = os.environ if environ is None else environ
    token = env.get("SAUCI_MIXPANEL_TOKEN", "").strip()
    if not token:
        return None
    host = env.get("SAUCI_MIXPANEL_HOST", "").strip() or DEFAULT_HOST
    if data_dir is not None and "spool" not in sender:
        key = hashlib.sha256(f"{host}\n{token}".encode()).hexdigest()[:12]
        sender["spool"] = Spool(Path(data_dir) / "analytics" / f"mixpanel-{key}.jsonl")
    return MixpanelSink(token, host=host, **sender)


def decode_batch(body: bytes) -> list[dict[str, Any]]:
    """The events of one ``/track`` request body (form-encoded ``data=[...]``); for tests."""
    from urllib.parse import parse_qs

    form = parse_qs(body.decode())
    return list(json.loads(form["data"][0]))
