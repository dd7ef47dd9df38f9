"""A step's :class:`~sauci.core.step_parts.Condition`, decided just before it would run.

The executor asks :func:`condition_verdict` once every step a step needs has
ended. The status functions answer from those steps' records: ``success()``
(each passed, or failed but may fail), ``failure()`` (one failed or
errored), ``cancelled()`` (the build is being cancelled), ``always()``; the
``needs`` context gives each needed job's ``result`` (``success``,
``failure``, ``cancelled``, ``skipped``) the way GitHub reports it, with
the ``outputs`` it left in the workspace (``Condition.outputs``; empty when
there is no such file).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sauci.core.models import Status, Step, StepRun

__all__ = ["OUTPUTS_MAX", "condition_verdict", "read_outputs"]

OUTPUTS_MAX = 1024 * 1024  # bytes of a job's outputs file read
_STATUS_CALL = r"\b(success|failure|always|cancelled)\s*\("  # compiled at the first condition
_RESULTS = {
    Status.PASSED: "success",
    Status.FAILED: "failure",
    Status.ERRORED: "failure",
    Status.CANCELLED: "cancelled",
    Status.SKIPPED: "skipped",
}


def _passed(run: StepRun) -> bool:
    return run.status is Status.PASSED or (run.status is Status.FAILED and run.allow_failure)


def _result(runs: Sequence[StepRun]) -> str:
    results = [_RESULTS.get(r.status, "failure") for r in runs if not _passed(r)]
    for word in ("failure", "cancelled"):
        if word in results:
            return word
    if runs and all(r.status is Status.SKIPPED for r in runs):
        return "skipped"
    return "success"


def condition_verdict(
    step: Step,
    needs: Sequence[str],
    runs: Mapping[str, StepRun],
    *,
    cancelling: bool = False,
    workspace: Path | None = None,
) -> tuple[Status, str] | None:
    """None when ``step`` runs now (no condition, or a true one); else how it ends and why.

    ``needs`` are the names of the steps it needs (all ended), ``runs`` their
    records. An expression that cannot be evaluated ends the step failed,
    with the error at the condition's file:line:col.
    """
    condition = step.condition
    if condition is None:
        return None
    needed = [runs[name] for name in needs if name in runs]
    passed = all(_passed(r) for r in needed)
    failed = any(r.status in (Status.FAILED, Status.ERRORED) and not _passed(r) for r in needed)
    functions = {
        "success": lambda: passed and not cancelling,
        "failure": lambda: failed,
        "always": lambda: True,
        "cancelled": lambda: cancelling,
    }
    source = condition.expression
    if not re.search(_STATUS_CALL, source):
        source = f"success() && ({source})"
    contexts: dict[str, Any] = dict(condition.contexts)
    contexts["needs"] = {
        name: {
            "result": _result([runs[s] for s in names if s in runs]),
            "outputs": read_outputs(workspace, condition.outputs.get(name)),
        }
        for name, names in condition.needs.items()
    }
    line, col = _position(condition.origin)
    try:
        from sauci.core.expr import evaluate, truthy

        value = truthy(evaluate(source, contexts, functions, line=line, col=col))
    except Exception as exc:
        where = f"{condition.origin}: " if condition.origin else ""
        return Status.FAILED, f"{where}cannot evaluate 'if: {condition.expression}': {exc}"
    if value:
        return None
    return Status.SKIPPED, condition.reason or f"skipped: 'if: {condition.expression}' is false"


def read_outputs(workspace: Path | None, relative: str | None) -> dict[str, str]:
    """The outputs a needed job left at ``relative`` (inside ``workspace`` only)."""
    if workspace is None or not relative:
        return {}
    root = workspace.resolve()
    path = (root / relative).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        return {}
    try:
        with path.open("rb") as fh:
            data = json.loads(fh.read(OUTPUTS_MAX))
    except (OSError, ValueError, RecursionError):  # RecursionError: nested too deep
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(k): v for k, v in data.items() if isinstance(v, str)}


def _position(origin: str) -> tuple[int, int]:
    parts = origin.rsplit(":", 2)
    if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
        return int(parts[1]), int(parts[2])
    return 1, 1
