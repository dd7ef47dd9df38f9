"""Builds whose runner is gone: who owned a running build, whether that
process is still alive, and ending such a build honestly.

A runner names itself in the build's ``claimed_by``: ``local-<pid>`` for
``sauci run`` and the library, ``serve:<host>:<pid>`` for ``sauci serve``.
When that process is gone (``kill -9``, a crash, a reboot) nothing else would
ever end the build: :func:`end_lost_build` ends it and every step it left
queued or running, as ``errored`` with the reason given, so no page or
command shows a step running forever.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import attrs

from sauci._logging import get_logger
from sauci.core.models import Build, Status
from sauci.typing import Store

__all__ = ["alive", "end_lost_build", "local_owner", "owner_is_gone"]


log = get_logger(__name__)


def alive(pid: int) -> bool:
    """Whether process ``pid`` exists (one of another user's counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def local_owner(claimed_by: str | None) -> int | None:
    """The pid of a ``local-<pid>`` runner (``sauci run``, the library), else None."""
    if claimed_by and claimed_by.startswith("local-") and claimed_by[6:].isdigit():
        return int(claimed_by[6:])
    return None


def owner_is_gone(claimed_by: str | None, host: str) -> bool:
    """Whether the process named in ``claimed_by`` (local-PID or serve:HOST:PID) is dead."""
    if not claimed_by:
        return True
    parts = claimed_by.split(":")
    if claimed_by.startswith("serve:") and len(parts) == 3:
        return parts[1] == host and parts[2].isdigit() and not alive(int(parts[2]))
    pid = local_owner(claimed_by)
    return pid is not None and not alive(pid)


def end_lost_build(store: Store, build: Build, reason: str) -> Build:
    """End ``build`` and each of its steps still queued or running as errored."""
    from sauci.core.undelivered import deliver_log

    now = time.time()
    for step in store.list_steps(build.id):
        if step.status.done:
            continue
        if step.log_path and os.path.isfile(step.log_path):
            # What its sink wrote to disk but had not sent yet (kill -9).
            try:
                deliver_log(store, build.id, step.name, Path(step.log_path))
            except OSError as exc:
                log.warning("lost_log_unreadable", path=step.log_path, error=str(exc))
        store.save_step(
            attrs.evolve(
                step,
                status=Status.ERRORED,
                reason=reason,
                finished_at=now if step.started_at is not None else None,
            )
        )
    return store.update_build(build.id, status=Status.ERRORED, reason=reason, finished_at=now)
