"""How many steps of one group run at once: GitHub's ``strategy.max-parallel``.

A step's ``max_parallel`` is ``(group, n)``: it starts only while fewer
than ``n`` steps of its group run. The executor's ``jobs`` and the server's
step slots still bound every step besides.
"""

from __future__ import annotations

from collections.abc import Iterable

from sauci.core.models import Step

__all__ = ["may_start"]


def may_start(step: Step, running: Iterable[Step]) -> bool:
    """Whether ``step`` may start beside the ``running`` steps."""
    if step.max_parallel is None:
        return True
    group, limit = step.max_parallel
    busy = sum(1 for s in running if s.max_parallel is not None and s.max_parallel[0] == group)
    return busy < max(1, limit)
