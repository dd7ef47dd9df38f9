"""What a build or step declares it costs (``resources:``) and what a machine can give.

A declared cost is also the step's limit: the sandbox enforces what the
scheduler reserved (``resources: {cpus: 2}`` without ``limits:`` runs the
step under ``limits: {cpu: 2}``), so a build cannot take more than it paid for.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import attrs

__all__ = ["DEFAULT_RESOURCES", "Resources", "build_maximum", "machine_capacity", "memory_text"]

_GIB = 1024**3


def _as_float(value: float | int | str) -> float:
    """``cpus`` as a float. A function of ours rather than ``float`` itself: attrs
    reads a converter's signature, and a builtin's is parsed from its text by
    the tokenizer, whose patterns are compiled on first use (5-10 ms on every
    start of every command)."""
    return float(value)


def _positive(instance: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if not value > 0:
        raise ValueError(f"{attribute.name} must be more than 0, got {value!r}")


@attrs.frozen(kw_only=True)
class Resources:
    """CPUs (cores, fractions allowed) and memory (bytes): a cost or a capacity."""

    cpus: float = attrs.field(default=1.0, converter=_as_float, validator=_positive)
    memory: int = attrs.field(default=_GIB, validator=_positive)

    def fits(self, free: Resources) -> bool:
        """Whether this cost fits in ``free``."""
        return self.cpus <= free.cpus + 1e-9 and self.memory <= free.memory

    def __add__(self, other: Resources) -> Resources:
        return Resources(cpus=self.cpus + other.cpus, memory=self.memory + other.memory)

    def minus(self, other: Resources) -> tuple[float, int]:
        """``self - other`` as (cpus, memory), which may be zero or below."""
        return self.cpus - other.cpus, self.memory - other.memory

    def lighter_than(self, other: Resources) -> bool:
        """Whether this cost is at most ``other`` in each resource, and not equal."""
        return self.cpus <= other.cpus + 1e-9 and self.memory <= other.memory and self != other

    def times_in(self, free: tuple[float, int]) -> int:
        """How many builds of this cost fit in ``free`` (cpus, memory) at once."""
        cpus, memory = free
        by_cpus = math.floor((cpus + 1e-9) / self.cpus)
        by_memory = math.floor(memory / self.memory) if self.memory else by_cpus
        return max(min(by_cpus, by_memory), 0)

    def describe(self) -> str:
        return f"{self.cpus:g} CPU{'s' if self.cpus != 1 else ''}, {memory_text(self.memory)}"


# What a build costs when neither it nor the server says: one core, 1 GiB.
DEFAULT_RESOURCES = Resources()


def memory_text(memory: int) -> str:
    """``2 * 1024**3`` -> ``"2 GiB"``, as :meth:`Resources.describe` says it."""
    for unit, scale in (("GiB", _GIB), ("MiB", 1024**2), ("KiB", 1024)):
        if memory >= scale:
            return f"{memory / scale:g} {unit}"
    return f"{memory} B"


def machine_capacity(
    *, proc: Path = Path("/proc"), cgroup: Path = Path("/sys/fs/cgroup")
) -> Resources:
    """This machine's CPUs and memory, within the cgroup (v2) limits it runs under."""
    cpus = float(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 0)
    cpus = cpus or float(os.cpu_count() or 1)
    memory = _meminfo_total(proc / "meminfo") or 4 * _GIB
    try:
        quota, period = (cgroup / "cpu.max").read_text().split()[:2]
        if quota != "max":
            cpus = min(cpus, max(int(quota) / int(period), 0.01))
    except (OSError, ValueError):
        pass
    try:
        limit = (cgroup / "memory.max").read_text().strip()
        if limit != "max":
            memory = min(memory, int(limit))
    except (OSError, ValueError):
        pass
    return Resources(cpus=cpus, memory=memory)


def _meminfo_total(path: Path) -> int | None:
    try:
        for line in path.read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def build_maximum(
    cpus: float | None, memory: int | None, *, machine: bool = True
) -> Resources | None:
    """The most one build may declare: the settings ``max_build_cpus`` and ``max_build_memory``,
    each defaulting to this machine's capacity (a build that asks for more
    than any worker has would wait for ever; operators of larger workers
    raise them). ``machine`` False (``sauci run`` on the user's own checkout):
    None unless a maximum is set."""
    if not machine and cpus is None and memory is None:
        return None
    here = machine_capacity()
    return Resources(cpus=cpus or here.cpus, memory=memory or here.memory)
