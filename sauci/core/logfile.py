"""Whether a step's log file on disk can stand for its log.

Readers (the pages, ``sauci logs``, the failed-step tail) read a log from its
file when it is on this machine: faster than the store, and live. But the
file is only a copy: one that was cut, overwritten or grown by something else
is not the log any more. A finished step's file is used only when it is as
long as the log the store holds; otherwise the store's copy is read (and a
warning says which file differs). A running step's file leads the store and
is used as it is. A file whose bytes changed without a change of size is
found by the checksum recorded beside it when its step ended
(:mod:`sauci.core.logcheck`). Either way :func:`check_log_file` says what a
reader must tell the person reading: that the file on disk no longer matches,
and whether the store's copy is shown instead or the file is all there is.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import attrs

from sauci._logging import get_logger
from sauci.core.logcheck import log_file_changed
from sauci.core.models import StepRun
from sauci.exceptions import StoreError

__all__ = ["LogFileCheck", "check_log_file", "trusted_log_file"]

log = get_logger(__name__)


@attrs.frozen(kw_only=True)
class LogFileCheck:
    """Where to read a step's log: ``path`` (None: the store's copy), and
    ``problem``, what a reader must say about the file on disk (None: nothing)."""

    path: Path | None
    problem: str | None = None


def trusted_log_file(store: Any, step: StepRun) -> Path | None:
    """The step's log file, or None when the store's copy must be read."""
    return check_log_file(store, step).path


def check_log_file(store: Any, step: StepRun) -> LogFileCheck:
    """Whether the step's log file stands for its log (see the module docstring)."""
    if not step.log_path or not os.path.isfile(step.log_path):
        return LogFileCheck(path=None)
    path = Path(step.log_path)
    if not step.status.done:
        return LogFileCheck(path=path)
    try:
        stored = store.log_size(step.build_id, step.name)
        size = path.stat().st_size
    except (StoreError, OSError):
        return LogFileCheck(path=path)  # the store cannot say: the file is all there is
    # The embedded store keeps a log as this very file: it has no other copy.
    other_copy = stored > 0 and "log_files" not in getattr(store, "capabilities", ())
    if stored not in (size, 0):
        log.warning(
            "log_file_differs",
            build=step.build_id,
            step=step.name,
            path=str(path),
            file_bytes=size,
            stored_bytes=stored,
        )
        what = (
            f"the log file {path} is {size} bytes, but the log of step {step.name!r} was {stored}"
        )
        return LogFileCheck(path=None, problem=_problem(what, other_copy))
    if log_file_changed(path):
        log.warning("log_file_changed", build=step.build_id, step=step.name, path=str(path))
        what = (
            f"the log file {path} no longer matches the checksum recorded when "
            f"step {step.name!r} ended: it was changed on disk"
        )
        return LogFileCheck(path=None if other_copy else path, problem=_problem(what, other_copy))
    return LogFileCheck(path=path)


def _problem(what: str, other_copy: bool) -> str:
    if other_copy:
        return f"{what}; showing the store's copy instead"
    return f"{what}; the store has no other copy: shown as it is now, not as the step wrote it"
