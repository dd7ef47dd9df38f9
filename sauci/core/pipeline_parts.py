"""A pipeline's cron schedules (``schedules:``): build a branch at cron times.

Re-exported by :mod:`sauci.core.models` and :mod:`sauci`. A step's optional
parts (services, cache, condition, expansion) are :mod:`sauci.core.step_parts`.
"""

from __future__ import annotations

import attrs

__all__ = ["Schedule"]


@attrs.frozen(kw_only=True)
class Schedule:
    """A cron trigger declared in the pipeline: build ``branch`` at ``cron`` times (UTC)."""

    cron: str
    branch: str = "main"
