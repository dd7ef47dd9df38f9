"""The overview's capacity panel: the queue with why each build waits, and each
worker's (or the in-process server's) capacity and use by declared cost.

Capacity comes from the store (each worker's record: CPUs, memory, slots);
use by declared cost from the server's ``server.json`` in ``DATA_DIR``
(what the dispatcher reserved on each worker at its last round, or the
in-process server's own room), shown only while that server's heartbeat is
fresh. Without it the use in builds is still known, the CPUs and memory not.
"""

from __future__ import annotations

import time
from typing import Any

from sauci.contrib.django import conf
from sauci.core.models import Status
from sauci.exceptions import SauCIError

__all__ = ["QUEUE_SHOWN", "capacity_panel", "worker_use"]

QUEUE_SHOWN = 50  # waiting builds listed; "and N more" beyond
_GIB = 1024**3


def _gib(memory: float) -> str:
    return f"{memory / _GIB:.1f} GiB"


def _server_status() -> dict[str, Any] | None:
    """The running server's status, or None when it is not fresh (not running, or elsewhere)."""
    from sauci.core.server import read_status

    status = read_status(conf.data_dir())
    stale = conf.config()["HEARTBEAT_STALE_SECONDS"]
    if not status or time.time() - float(status.get("heartbeat") or 0) > stale:
        return None
    return status


def worker_use(worker: Any, rooms: dict[str, dict[str, Any]]) -> dict[str, str]:
    """A worker's CPUs and memory, "used / capacity" where the server said its use."""
    room = rooms.get(worker.name)
    if not worker.cpus:
        return {"cpus": "not declared", "memory": "not declared"}
    if room is None:
        return {
            "cpus": f"? / {worker.cpus:g}",
            "memory": f"? / {_gib(worker.memory)}",
        }
    return {
        "cpus": f"{room['cpus_used']:g} / {room['cpus']:g}",
        "memory": f"{_gib(room['memory_used'])} / {_gib(room['memory'])}",
    }


def capacity_panel(store: Any) -> dict[str, Any]:
    """What the panel shows: ``queue`` (builds with why each waits), ``more``
    (whether more are queued), ``rooms`` (worker name -> its use, from the server),
    ``server`` (the in-process server's capacity and use, or None)."""
    try:
        queued = store.list_builds(status=Status.QUEUED, limit=QUEUE_SHOWN + 1)
    except SauCIError:
        queued = []
    queued = sorted(queued, key=lambda b: (-b.priority, b.queued_at, b.id))
    status = _server_status() or {}
    rooms = {r["name"]: r for r in status.get("workers") or []}
    server = None
    if room := status.get("capacity"):
        server = {
            "name": status.get("name") or "this server",
            "cpus": f"{room['cpus_used']:g} / {room['cpus']:g}",
            "memory": f"{_gib(room['memory_used'])} / {_gib(room['memory'])}",
            "builds": len(status.get("running") or ()),
        }
    return {
        "queue": [{"b": b, "why": _why(b.reason)} for b in queued[:QUEUE_SHOWN]],
        "more": len(queued) > QUEUE_SHOWN,
        "rooms": rooms,
        "server": server,
    }


def _why(reason: str | None) -> str:
    """The waiting reason without its prefix ("waiting: ", "waiting for a worker: ")."""
    if not reason:
        return "next to start"
    for prefix in ("waiting for a worker: ", "waiting: "):
        if reason.startswith(prefix):
            return reason[len(prefix) :]
    return reason
