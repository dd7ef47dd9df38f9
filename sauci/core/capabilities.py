"""What a step asks of its sandbox that the sandbox cannot enforce.

Asking for ``network: false`` or a memory limit on a sandbox that cannot
enforce it must never pass silently: the executor calls
:func:`check_capabilities` before a step runs and turns the problems into a
SandboxError (or, by an explicit setting, warnings in the build's log). It
reads only the step and ``sandbox.capabilities``: any Sandbox, no adapter.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from sauci.core.logbudget import format_size
from sauci.core.models import Step

if TYPE_CHECKING:
    from sauci.typing import Sandbox

__all__ = ["check_capabilities", "within_process_maximum"]


def check_capabilities(step: Step, sandbox: Sandbox) -> list[str]:
    """One sentence per thing ``step`` asks for that ``sandbox`` does not claim; [] when none.

    ``network: false`` needs ``isolates_network``; ``network: true`` is always
    possible. ``image:`` needs ``image`` (a sandbox without images would run
    on the host instead). Each limit needs its ``limits.*`` capability.
    ``services:`` needs ``services``.
    """
    caps = sandbox.capabilities
    name = type(sandbox).__name__
    problems: list[str] = []
    if step.network is False and "isolates_network" not in caps:
        problems.append(
            f"step {step.name!r} asks for network: false, but {name} cannot isolate the network"
        )
    if step.image and "image" not in caps:
        problems.append(
            f"step {step.name!r} names image {step.image!r}, but {name} does not run images"
        )
    if step.services and "services" not in caps:
        names = ", ".join(repr(s.name) for s in step.services)
        problems.append(
            f"step {step.name!r} asks for services ({names}), but {name} cannot run services"
        )
    limits = step.limits
    for value, cap, what in (
        (limits.memory, "limits.memory", lambda v: f"a memory limit of {format_size(v)}"),
        (limits.processes, "limits.processes", lambda v: f"a process limit of {v}"),
        (limits.cpu, "limits.cpu", lambda v: f"a cpu limit of {v:g} cores"),
    ):
        if value is not None and cap not in caps:
            problems.append(
                f"step {step.name!r} asks for {what(value)}, but {name} cannot enforce it"
            )
    return problems


def within_process_maximum(step: Step, maximum: int | None) -> tuple[Step, str | None]:
    """``step`` with its ``limits: processes`` at most ``maximum`` (the
    server's ``max_step_processes``), and the sentence that says so when it was
    lowered: a pipeline may lower the process limit, never lift it past what
    the server allows (it would lift the fork-bomb cap)."""
    asked = step.limits.processes
    if maximum is None or asked is None or asked <= maximum:
        return step, None
    limits = attrs.evolve(step.limits, processes=maximum)
    note = (
        f"limits: processes {asked} is more than this server allows "
        f"(max_step_processes {maximum}); the step runs with {maximum}"
    )
    return attrs.evolve(step, limits=limits), note
