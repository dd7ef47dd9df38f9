"""Events of any size on a stream whose entries are limited (a Kafka broker
refuses a message over about 1 MB): an event larger than one entry is
appended as numbered pieces, and the view applies it when it holds them all.

Why pieces in the stream rather than the body stored beside it (a blob key or
file) and referenced: the stream stays the one truth. Replaying it alone
rebuilds every view, on Redis and on Kafka alike; there is no second place
that can lose a body its event still names, nothing to garbage-collect when
a stream is trimmed, and one event's pieces are written in order by the
process that writes it, so a reader needs nothing but the entries themselves.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["Assembler", "pieces"]


def pieces(payload: bytes, data: bytes, eid: str, size: int) -> list[tuple[bytes, bytes]]:
    """The entries that carry one event: itself when it fits in ``size``
    bytes, else pieces of its payload and data, each at most ``size`` bytes
    of body behind a small header."""
    if len(payload) + len(data) <= size:
        return [(payload, data)]
    body = payload + data
    count = -(-len(body) // size)
    return [
        (
            json.dumps(
                {"op": "piece", "eid": eid, "n": n, "of": count, "split": len(payload)}
            ).encode(),
            body[n * size : (n + 1) * size],
        )
        for n in range(count)
    ]


class Assembler:
    """Pieces as they arrive (several events' pieces may interleave, and a
    retried event may send its pieces again): the whole event once every
    piece of it is there."""

    def __init__(self) -> None:
        self._parts: dict[str, dict[int, bytes]] = {}

    def add(self, head: dict[str, Any], data: bytes) -> tuple[bytes, bytes] | None:
        eid, count = str(head["eid"]), int(head["of"])
        parts = self._parts.setdefault(eid, {})
        parts[int(head["n"])] = data
        if len(parts) < count:
            return None
        del self._parts[eid]
        body = b"".join(parts[n] for n in range(count))
        split = int(head["split"])
        return body[:split], body[split:]

    def waiting(self) -> int:
        """Events with some pieces applied and others still to come."""
        return len(self._parts)
