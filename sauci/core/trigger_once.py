"""One build for one manual trigger across processes: two clicks on Trigger
handled by two web workers (or two `sauci trigger` at once) make one build.

Within a process the Scheduler holds a lock; across processes the store's
``record_delivery`` (an atomic "was this id seen?", the same that keeps a
webhook delivery from being acted on twice) marks who asked first, per time
window. The request's window is ``floor(now / window)``; a request in the
first second of a window marks the previous one too, so two clicks a moment
apart on either side of a window's edge still meet.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from sauci.typing import Store

__all__ = ["asked_first"]

# A request this close to the start of its window also marks the one before.
_EDGE = 1.0


def _key(parts: list[object], bucket: int) -> str:
    import hashlib  # OpenSSL's load, for the servers and web workers that call this

    digest = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:32]
    return f"trigger:{digest}:{bucket}"


def asked_first(
    store: Store,
    *,
    repo: str,
    ref: str,
    sha: str,
    actor: str,
    params: Mapping[str, str],
    now: float,
    window: float,
) -> bool:
    """Whether this is the first request for this trigger in its window (True
    also for a store that cannot record ids: the process lock is all there is)."""
    record = getattr(store, "record_delivery", None)
    if record is None:
        return True
    parts: list[object] = [repo, ref, sha, actor, sorted(dict(params).items())]
    bucket = int(now // window)
    buckets = [bucket, bucket - 1] if now - bucket * window < _EDGE else [bucket]
    # Stop at the first key seen: a request that records both windows' keys
    # while another records them too must not leave both "not first" (A has
    # its window's key, B finds it and then takes the previous window's key
    # before A does). Every request records its own window's key first, so
    # the one that takes it is the only one that goes on to the previous one.
    return not any(record(_key(parts, b)) for b in buckets)
