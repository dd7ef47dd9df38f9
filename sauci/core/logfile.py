"""Whether a step's log file on disk can stand for its log.

Readers (the pages, ``sauci logs``, the failed-step tail) read a log from its
file when it is on this machine: faster than the store, and live. But the
file is only a copy: one that was cut, overwritten or grown by something else
is not the log any more. A finished step's file is used only when it is as
long as the log the store holds; otherwise the store's copy is read (and a
warning says which file differs). A running step's file leads the store and
is used as it is. Corruption that keeps the size is not seen here.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sauci._logging import get_logger
from sauci.core.models import StepRun
from sauci.exceptions import StoreError

__all__ = ["trusted_log_file"]

log = get_logger(__name__)


def trusted_log_file(store: Any, step: StepRun) -> Path | None:
    """The step's log file, or None when the store's copy must be read."""
    if not step.log_path or not os.path.isfile(step.log_path):
        return None
    path = Path(step.log_path)
    if not step.status.done:
        return path
    try:
        stored = store.log_size(step.build_id, step.name)
        size = path.stat().st_size
    except (StoreError, OSError):
        return path  # the store cannot say: the file is all there is
    if stored == size or stored == 0:
        return path  # the same log, or one the store never had (a silent step, a log in the file)
    log.warning(
        "log_file_differs",
        build=step.build_id,
        step=step.name,
        path=str(path),
        file_bytes=size,
        stored_bytes=stored,
    )
    return None
