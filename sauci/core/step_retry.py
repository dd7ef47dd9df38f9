"""Which failed attempts of a step are tried again (``Step.retries``, ``retry_on``, ``retry_when``).

Each failure is of one kind, from what SauCI knows of how the attempt ended:

- ``exit``: the command failed (a non-zero exit code, or killed by a signal
  SauCI did not send);
- ``timeout``: SauCI ended it at its time limit;
- ``resource``: it ran out of memory or hit its process limit;
- ``sandbox``: the sandbox could not run it (a SandboxError: no image, the
  daemon gone); without ``retry_when`` such a step errors at once.

``any`` is every kind. A cancelled step, or one ended for its log, is never
tried again. With neither ``retry_on`` nor ``retry_when`` every kind but
``sandbox`` is; otherwise an attempt is tried again when its exit code is in
``retry_on`` or its kind in ``retry_when`` (GitLab's ``retry: exit_codes``
or'ed with ``retry: when``).
"""

from __future__ import annotations

from sauci.core.models import EndedBy, Step, StepResult

__all__ = ["failure_kind", "retry_sandbox_error", "should_retry"]


def failure_kind(result: StepResult) -> str | None:
    """The kind of a failed attempt; None when it passed or is never retried."""
    if result.ok or result.ended_by in (EndedBy.CANCELLED, EndedBy.LOG_LIMIT):
        return None
    if result.ended_by is EndedBy.TIMEOUT:
        return "timeout"
    if result.ended_by in (EndedBy.OUT_OF_MEMORY, EndedBy.PROCESS_LIMIT):
        return "resource"
    return "exit"


def should_retry(step: Step, result: StepResult, attempt: int) -> bool:
    """Whether the ``attempt``-th run of ``step``, which ended with ``result``, is run again."""
    if attempt > step.retries:
        return False
    kind = failure_kind(result)
    if kind is None:
        return False
    if not step.retry_on and not step.retry_when:
        return True
    if result.exit_code is not None and result.exit_code in step.retry_on:
        return True
    return kind in step.retry_when or "any" in step.retry_when


def retry_sandbox_error(step: Step, attempt: int) -> bool:
    """Whether an attempt the sandbox could not run (SandboxError) is run again."""
    return attempt <= step.retries and bool({"sandbox", "any"} & set(step.retry_when))
