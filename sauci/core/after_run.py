"""A step's ``after_run``: commands run after each attempt, however it ended.

GitLab's ``after_script`` runs after the job's script passed, failed, timed
out or was cancelled (GitLab 17.0 and later for a cancel), in a shell of its
own with a time limit of its own (``RUNNER_AFTER_SCRIPT_TIMEOUT``, 5 minutes
by default). So here: once the sandbox has ended the attempt (its whole
process tree, for a timeout or a cancel), the commands run as a second run
of the same step in the same workspace and sandbox, limited to
``Step.after_timeout``, writing to the step's log. A cancel does not stop
them (they are the clean-up a cancel asks for); their time limit does. They
never change the step's status: how they ended is only written to the log.
``SAUCI_STEP_STATUS`` tells them how the attempt ended: ``passed``,
``failed``, ``timeout`` or ``cancelled``.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

import attrs

from sauci._logging import get_logger
from sauci.core.models import EndedBy, Step, StepResult
from sauci.exceptions import SandboxError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from sauci.typing import LogWriter, Sandbox

__all__ = ["attempt_status", "run_after"]

log = get_logger(__name__)


def attempt_status(result: StepResult) -> str:
    """How an attempt ended, in the words ``SAUCI_STEP_STATUS`` uses."""
    if result.ok:
        return "passed"
    if result.ended_by is EndedBy.CANCELLED:
        return "cancelled"
    if result.ended_by is EndedBy.TIMEOUT:
        return "timeout"
    return "failed"


def run_after(
    sandbox: Sandbox,
    step: Step,
    workspace: Path,
    writer: LogWriter,
    env: Mapping[str, str],
    result: StepResult,
    label: str,
) -> StepResult | None:
    """Run ``step.after_run`` after an attempt that ended with ``result``;
    what it returned (None when the sandbox could not run it)."""
    after = attrs.evolve(
        step,
        run=step.after_run,
        timeout=step.after_timeout,
        retries=0,
        retry_on=(),
        retry_when=(),
        after_run=(),
        cache=None,
    )
    status = attempt_status(result)
    writer.write(f"\nsauci: running after_run (the step {status})\n".encode())
    try:
        ended = sandbox.run(
            after,
            workspace,
            writer,
            env={**env, "SAUCI_STEP_STATUS": status},
            cancel=threading.Event(),
            label=f"{label}-after",
        )
    except SandboxError as exc:
        writer.write(f"sauci: after_run could not run: {exc}\n".encode())
        log.warning("after_run_failed", step=step.name, error=str(exc))
        return None
    if ended.ended_by is EndedBy.TIMEOUT:
        writer.write(
            f"sauci: after_run was ended after its {step.after_timeout:g} s limit; "
            "the step's status comes from its run\n".encode()
        )
    elif not ended.ok:
        writer.write(
            f"sauci: after_run ended with exit code {ended.exit_code}; "
            "the step's status comes from its run\n".encode()
        )
    return ended
