"""Tracking usage: build events from the hub, UI and CLI events from their callers.

Privacy rules, enforced here rather than trusted to callers: ids (users,
repositories) are hashed with a per-installation salt that never leaves the
data directory; properties are scalars only and strings are cut short; build
events carry no log text, no commit message, no author and no branch name.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sauci._logging import get_logger
from sauci.core.models import Status
from sauci.monitoring.analytics._base import AnalyticsEvent, Sink

__all__ = ["Analytics", "load_salt"]

log = get_logger(__name__)

SALT_FILE = "analytics_salt"
MAX_STRING = 64


def load_salt(data_dir: Path) -> bytes:
    """This installation's salt: 32 random bytes, made once in ``data_dir`` (mode 0600)."""
    path = Path(data_dir) / SALT_FILE
    try:
        text = path.read_text().strip()
        if text:
            return bytes.fromhex(text)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    salt = os.urandom(32)  # what secrets.token_bytes reads
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it meanwhile: use theirs
        return bytes.fromhex(path.read_text().strip())
    with os.fdopen(fd, "w") as fh:
        fh.write(salt.hex() + "\n")
    return salt


def _clean(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, Status):
        return value.value
    return str(value)[:MAX_STRING]


class Analytics:
    """Hands usage events to sinks: ``track`` from any thread, ``on_event`` from the hub."""

    def __init__(self, sinks: Sequence[Sink], *, salt: bytes, component: str = "") -> None:
        self.sinks = list(sinks)
        self._salt = salt
        self.component = component
        self.installation = "i_" + self.hash("installation")

    def hash(self, value: str) -> str:
        """A stable, salted, one-way id for ``value`` (16 hex digits)."""
        return hmac.new(self._salt, value.encode(), hashlib.sha256).hexdigest()[:16]

    def user_id(self, user: str) -> str:
        return "u_" + self.hash(f"user:{user}")

    def repo_id(self, repo: str) -> str:
        return "r_" + self.hash(f"repo:{repo}")

    def track(
        self, name: str, *, user: str | None = None, repo: str | None = None, **properties: Any
    ) -> None:
        """Queue one event: ``user`` and ``repo`` are hashed; properties must be scalars."""
        props = {key: _clean(value) for key, value in properties.items()}
        if repo is not None:
            props["repo"] = self.repo_id(repo)
        if self.component:
            props.setdefault("component", self.component)
        event = AnalyticsEvent(
            name=name,
            at=time.time(),
            distinct_id=self.user_id(user) if user else self.installation,
            properties=props,
        )
        for sink in self.sinks:
            sink.send(event)

    def on_event(self, name: str, fields: dict[str, Any]) -> None:
        """The hub listener: build started and finished, with durations and status."""
        if name not in ("build_started", "build_finished"):
            return
        try:
            self._track_build(name, fields["build"])
        except Exception:  # analytics must never reach the build that emitted the event
            log.exception("analytics_event_failed", hub_event=name)

    def _track_build(self, name: str, build: Any) -> None:
        props: dict[str, Any] = {"trigger": build.event, "attempt": build.attempt}
        if name == "build_started":
            if build.started_at and build.queued_at:
                props["queue_seconds"] = round(max(0.0, build.started_at - build.queued_at), 3)
        else:
            props["status"] = Status(build.status).value
            if build.duration is not None:
                props["duration_seconds"] = round(max(0.0, build.duration), 3)
        self.track(name, repo=build.repo, **props)

    def close(self, timeout: float = 0.2) -> None:
        """Give every sink up to ``timeout`` seconds (in all) to send what is queued."""
        deadline = time.monotonic() + timeout
        for sink in self.sinks:
            sink.close(max(0.0, deadline - time.monotonic()))
