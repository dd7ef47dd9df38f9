"""``resources: {cpus: N, memory: SIZE}``: what a pipeline or a step declares it
costs, checked against the server's per-build maximum where it is written."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

from sauci.core.models import Limits
from sauci.core.resources import Resources, memory_text

if TYPE_CHECKING:
    from yaml.nodes import Node

    from sauci.core.pipeline._values import ValueReader

__all__ = ["declared_limits", "over_maximum", "read_resources"]


def read_resources(
    reader: ValueReader, node: Node, what: str, maximum: Resources | None
) -> Resources | None:
    """The Resources ``node`` declares; None once a problem is added at its key."""
    cores = getattr(reader, "_cores")  # noqa: B009 - StepKeyReader's, shared with `limits`
    found = reader._options(
        node,
        what,
        "a mapping with 'cpus' and/or 'memory', such as {cpus: 2, memory: 4GiB}",
        {"cpus": cores, "memory": reader._size},
    )
    if found is None:
        return None
    declared = Resources(**found)
    if maximum is None:
        return declared
    ok = True
    if declared.cpus > maximum.cpus:
        reader.chk.add(
            node,
            f"{what}: {declared.cpus:g} CPUs is more than this server's per-build "
            f"maximum of {maximum.cpus:g}",
        )
        ok = False
    if declared.memory > maximum.memory:
        reader.chk.add(
            node,
            f"{what}: memory {memory_text(declared.memory)} "
            f"is more than this server's per-build maximum of "
            f"{memory_text(maximum.memory)}",
        )
        ok = False
    return declared if ok else None


def over_maximum(
    reader: ValueReader, node: Node, what: str, limits: dict[str, Any], maximum: Resources
) -> bool:
    """Whether a step's ``limits:`` (``cpu``, ``memory``) exceed the server's
    per-build maximum; each excess is a problem at ``node``."""
    over = False
    cpu, memory = limits.get("cpu"), limits.get("memory")
    if cpu is not None and cpu > maximum.cpus:
        reader.chk.add(
            node,
            f"{what}: cpu {cpu:g} is more than this server's per-build maximum of "
            f"{maximum.cpus:g} CPUs (max_build_cpus)",
        )
        over = True
    if memory is not None and memory > maximum.memory:
        reader.chk.add(
            node,
            f"{what}: memory {memory_text(memory)} is more "
            f"than this server's per-build maximum of "
            f"{memory_text(maximum.memory)} (max_build_memory)",
        )
        over = True
    return over


def declared_limits(kwargs: dict[str, Any], pipeline: Resources | None) -> dict[str, Any]:
    """A step's keywords with its declared cost (its own, else the pipeline's)
    made its limits where ``limits:`` does not say: the sandbox enforces what
    the scheduler reserved."""
    cost = kwargs.get("resources") or pipeline
    if cost is None:
        return kwargs
    limits = kwargs.get("limits") or Limits()
    kwargs["limits"] = attrs.evolve(
        limits,
        cpu=cost.cpus if limits.cpu is None else limits.cpu,
        memory=cost.memory if limits.memory is None else limits.memory,
    )
    kwargs.setdefault("resources", cost)
    return kwargs
