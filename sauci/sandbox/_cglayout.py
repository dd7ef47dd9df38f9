"""Where step cgroups are made on this machine, how they are named, and what the
kernel counted for one (out-of-memory kills, process-limit hits)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import attrs

from sauci.sandbox._cgroups import DEFAULT_ROOT, Found, probe

__all__ = ["CgroupEvents", "CgroupLayout", "cgroup_name", "detect_cgroups", "layout_of"]

_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


def cgroup_name(prefix: str, label: str) -> str:
    """``<prefix><label>-<random>`` with the label made safe for a directory name."""
    safe = "".join(c if c in _SAFE else "_" for c in label)[:120] or "step"
    return f"{prefix}{safe}-{os.urandom(4).hex()}"


@attrs.frozen(kw_only=True)
class CgroupLayout:
    """Where step cgroups are made on this machine.

    ``bases`` maps a controller name (v1) or ``"unified"`` (v2) to the
    directory under which step cgroups are created. ``controllers`` are the
    ones that can enforce limits (v2: enabled in the base's subtree_control).
    """

    version: int
    bases: Mapping[str, Path]
    controllers: frozenset[str]

    @property
    def capabilities(self) -> frozenset[str]:
        return frozenset(f"limits.{'processes' if c == 'pids' else c}" for c in self.controllers)


@attrs.frozen(kw_only=True)
class CgroupEvents:
    """What the kernel counted for a step cgroup.

    ``oom_kills`` is None when the kernel does not count them (v1 before
    4.13); then ``memory_failures`` (times the limit was hit) is the hint.
    """

    oom_kills: int | None = None
    memory_failures: int = 0
    pids_max_hits: int = 0

    def out_of_memory(self) -> bool:
        if self.oom_kills is not None:
            return self.oom_kills > 0
        return self.memory_failures > 0


def detect_cgroups(root: Path | str = DEFAULT_ROOT) -> tuple[CgroupLayout | None, str]:
    """Find where this process may create step cgroups (sauci.sandbox._cgroups.probe).

    Returns the layout, or None and the reason in words.
    """
    return layout_of(probe(root))


def layout_of(answer: tuple[Found | None, str]) -> tuple[CgroupLayout | None, str]:
    """A probe's answer as a CgroupLayout (or None) and the reason."""
    found, reason = answer
    if found is None:
        return None, reason
    version, bases, controllers = found
    return CgroupLayout(version=version, bases=bases, controllers=controllers), reason
