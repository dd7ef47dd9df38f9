"""What a step demands of the sandbox that runs it, checked before the build.

``sauci validate`` and the run's own loading of ``.sauci.yml`` both ask
:func:`unmet_demands` about every step, with the capabilities of the
sandbox that will run it (:class:`SandboxCapabilities`, filled in by
``sauci.app.sandbox_capabilities``), so the two say the same thing at the
same file:line:col. The executor's check before each step
(:mod:`sauci.core.capabilities`) stays as the backstop for pipelines built
in code.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import attrs

from sauci.core.models import Step

__all__ = ["Demand", "SandboxCapabilities", "demand_message", "step_demands", "unmet_demands"]


@attrs.frozen(kw_only=True)
class Demand:
    """One thing a step asks of its sandbox.

    ``key`` is where it is written in the step (``("limits", "memory")``),
    ``capability`` what the sandbox must claim, ``cannot`` the end of
    "sandbox 'local' cannot ...".
    """

    key: tuple[str, ...]
    capability: str
    cannot: str


@attrs.frozen(kw_only=True)
class SandboxCapabilities:
    """The sandboxes a pipeline's steps may run in, and what each can do.

    ``default`` runs a step that names none; ``lookup(name)`` gives a
    sandbox's capabilities, or None when they cannot be known here (then its
    steps are not checked: the executor checks them before they run);
    ``names`` are the sandboxes a message may suggest, in order of preference.
    """

    default: str
    lookup: Callable[[str], frozenset[str] | None] = attrs.field(eq=False)
    names: tuple[str, ...] = ()


def step_demands(step: Step) -> list[Demand]:
    """Everything ``step`` asks of its sandbox, in the order of the keys' meaning.

    ``network: false`` needs ``isolates_network`` (``network: true`` anyone can
    give); ``image:`` needs ``image``; ``services:`` needs ``services``; each
    limit its ``limits.*`` capability.
    """
    found: list[Demand] = []
    if step.services:
        found.append(Demand(key=("services",), capability="services", cannot="run services"))
    if step.image:
        found.append(Demand(key=("image",), capability="image", cannot="run images"))
    if step.network is False:
        found.append(
            Demand(key=("network",), capability="isolates_network", cannot="turn the network off")
        )
    limits = step.limits
    for value, name, what in (
        (limits.memory, "memory", "a memory limit"),
        (limits.processes, "processes", "a process limit"),
        (limits.cpu, "cpu", "a cpu limit"),
    ):
        if value is not None:
            found.append(
                Demand(key=("limits", name), capability=f"limits.{name}", cannot=f"enforce {what}")
            )
    return found


def unmet_demands(step: Step, sandboxes: SandboxCapabilities) -> tuple[str, list[Demand]]:
    """The sandbox that will run ``step`` and what it asks that this sandbox cannot give."""
    name = step.sandbox or sandboxes.default
    demands = step_demands(step)
    caps = sandboxes.lookup(name) if demands else None  # a plain step makes no sandbox
    if caps is None:
        return name, []
    return name, [d for d in demands if d.capability not in caps]


def demand_message(
    label: str, sandbox: str, demand: Demand, sandboxes: SandboxCapabilities, *, named: bool
) -> str:
    """ "sandbox 'local' cannot run services (step 'test'): use --sandbox docker ...".

    ``named``: the step names its sandbox itself, so only ``sandbox:`` in the
    step changes it (a flag's default does not reach it).
    """
    able = _able(demand, sandboxes, besides=sandbox)
    text = f"sandbox {sandbox!r} cannot {demand.cannot} ({label})"
    if not able:
        return f"{text}, and no sandbox known here can"
    if named:
        return f"{text}: use 'sandbox: {able}' in the step"
    return f"{text}: use --sandbox {able}, or 'sandbox: {able}' in the step"


def _able(demand: Demand, sandboxes: SandboxCapabilities, *, besides: str) -> str | None:
    for name in _unique(sandboxes.names):
        if name != besides and demand.capability in (sandboxes.lookup(name) or ()):
            return name
    return None


def _unique(names: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(names))
