"""The Mixpanel sink: events sent to Mixpanel's ``/track`` API, off the caller's thread.

The token comes only from the environment (``SAUCI_MIXPANEL_TOKEN``), never
from a file in a repository. Events are sent in batches of up to 50 (the API's
limit) from a background thread, as the API and the official library send
them: a form-encoded ``data`` array of ``{"event", "properties"}`` objects,
with ``verbose=1`` (the answer says whether the batch was taken) and ``ip=0``
(no geolocation from our address). The host is a setting
(``SAUCI_MIXPANEL_HOST``: a name such as ``api-eu.mixpanel.com`` for HTTPS, or
a full ``http://127.0.0.1:8080`` URL, which the tests use for a local
stand-in). Retries are SauCI's own (bounded, with back-off). What is unsent at
exit is kept in ``<data dir>/analytics/`` for the next process (``_spool.py``).

The request is made with the standard library's ``urllib.request``, imported on
the sender's thread at its first delivery (about 30 ms of CPU), not with the
official ``mixpanel`` library: its import (5.x: httpx, requests and rich for
its feature flags) took 230-270 ms of CPU here, more than the whole 200 ms a
command gives its sinks at exit, so a command's delivery never got past the
import and every endpoint, reachable or not, was marked down.
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


class _NotTaken(Exception):
    """Mixpanel answered, but did not take the batch (its answer says why)."""


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
        base = host.rstrip("/") if "://" in host else f"https://{host}"
        self.url = f"{base}/track"
        self.timeout = timeout
        self.sender = BatchSender(
            self._deliver,
            name=self.name,
            batch_size=min(50, batch_size),
            prepare=_client,
            **sender,
        )

    def _message(self, event: AnalyticsEvent) -> dict[str, Any]:
        return {
            "event": event.name,
            "properties": {
                **event.properties,
                "token": self._token,
                "distinct_id": event.distinct_id,
                "time": event.at,
                "$insert_id": event.insert_id,  # sent twice (spooled while in flight): counted once
                "mp_lib": "sauci",
            },
        }

    def _deliver(self, batch: list[AnalyticsEvent]) -> None:
        urlencode, Request, urlopen = _client()
        data = json.dumps([self._message(e) for e in batch], separators=(",", ":"))
        body = urlencode({"data": data, "verbose": 1, "ip": 0}).encode()
        request = Request(self.url, data=body, method="POST")
        request.add_header("Content-Type", "application/x-www-form-urlencoded")
        # An HTTP error status (a 500) raises HTTPError, a refused or timed-out
        # connection URLError or OSError: the sender counts them all as "not taken".
        with urlopen(request, timeout=self.timeout) as response:
            reply = response.read()
        try:
            status = json.loads(reply or b"{}").get("status")
        except (ValueError, AttributeError):
            status = None
        if status != 1:
            raise _NotTaken(f"the batch was not taken: {reply[:200]!r}")

    def send(self, event: AnalyticsEvent) -> None:
        self.sender.put(event)

    def close(self, timeout: float = 0.2) -> None:
        self.sender.close(timeout)


def _client() -> tuple[Any, Any, Any]:
    """urllib's request helpers: imported on the sender's thread when it starts (about
    30 ms of CPU), beside the command's own work rather than in its exit flush."""
    from urllib.parse import urlencode
    from urllib.request import Request, urlopen

    return urlencode, Request, urlopen


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
