"""What every store does with the fields of its records, whatever keeps them:
the fields a request gives a new build, the check of ``update_build``'s
keywords, the fields that finish a build, a worker as plain JSON values.
Adapter-neutral (models only), so that adapters share it without importing
each other."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import attrs

from sauci.core.models import Build, BuildRequest, Status, Worker

__all__ = [
    "REQUEST_FIELDS",
    "UPDATABLE_BUILD_FIELDS",
    "WORKER_FIELDS",
    "check_update_fields",
    "finish_fields",
    "json_copy",
    "new_build",
    "request_fields",
    "request_of",
    "worker_from_dict",
    "worker_to_dict",
]

# What a BuildRequest carries into the build it makes.
REQUEST_FIELDS = tuple(f.name for f in attrs.fields(BuildRequest))

# Fields update_build accepts: the protocol's list plus ref and priority.
UPDATABLE_BUILD_FIELDS = frozenset(
    {
        "status",
        "reason",
        "started_at",
        "finished_at",
        "claimed_by",
        "sha",
        "ref",
        "author",
        "message",
        "priority",
        "cancel_requested",
        "runs_on",
        "heartbeat_at",
    }
)


def json_copy(value: Any) -> Any:
    """What a JSON column gives back: rejects what it cannot store (TypeError)
    and turns tuples into lists, exactly as the SQL stores do."""
    return json.loads(json.dumps(value))


def request_fields(request: BuildRequest) -> dict[str, Any]:
    """The request's fields, by name, as the new build takes them."""
    return {name: getattr(request, name) for name in REQUEST_FIELDS}


def new_build(build_id: int, request: BuildRequest, *, status: Status, queued_at: float) -> Build:
    """The build ``request`` makes, queued at ``queued_at``; its params as JSON keeps them."""
    fields = request_fields(request)
    fields["params"] = json_copy(dict(request.params))
    return Build(id=build_id, status=Status(status), queued_at=queued_at, **fields)


def request_of(build: Build, **changes: Any) -> BuildRequest:
    """The request that would make ``build`` again (with ``changes``)."""
    return BuildRequest(**{**{name: getattr(build, name) for name in REQUEST_FIELDS}, **changes})


def check_update_fields(changes: Mapping[str, Any]) -> dict[str, Any]:
    """Validate update_build's keywords; returns them with values normalized.

    An unknown field is a programming error (TypeError), as for a function
    called with an unexpected keyword argument.
    """
    unknown = sorted(set(changes) - UPDATABLE_BUILD_FIELDS)
    if unknown:
        raise TypeError(
            f"update_build() got unknown field(s) {', '.join(map(repr, unknown))}; "
            f"allowed: {', '.join(sorted(UPDATABLE_BUILD_FIELDS))}"
        )
    out = dict(changes)
    if "status" in out:
        out["status"] = Status(out["status"])
    if "priority" in out:
        out["priority"] = int(out["priority"])
    if "runs_on" in out:
        out["runs_on"] = tuple(str(label) for label in out["runs_on"])
    return out


def finish_fields(status: Status, reason: str | None, finished_at: float) -> dict[str, Any]:
    """``finish_build``'s fields as a store writes them (the status by its value)."""
    return {"status": Status(status).value, "reason": reason, "finished_at": float(finished_at)}


WORKER_FIELDS = (
    "name",
    "host",
    "labels",
    "slots",
    "running",
    "started_at",
    "heartbeat_at",
    "state",
    "cpus",
    "memory",
)


def worker_to_dict(worker: Worker) -> dict[str, Any]:
    """The worker as JSON values (lists for its tuples)."""
    return {
        "name": worker.name,
        "host": worker.host,
        "labels": list(worker.labels),
        "slots": int(worker.slots),
        "running": [int(b) for b in worker.running],
        "started_at": float(worker.started_at),
        "heartbeat_at": float(worker.heartbeat_at),
        "state": worker.state,
        "cpus": float(worker.cpus),
        "memory": int(worker.memory),
    }


def worker_from_dict(values: Mapping[str, Any]) -> Worker:
    """The inverse of :func:`worker_to_dict`; unknown keys are ignored, so a
    record written by a newer SauCI still reads."""
    return Worker(**{k: values[k] for k in WORKER_FIELDS if k in values})
