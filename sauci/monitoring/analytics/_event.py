"""One usage event, as tracked, queued, spooled and sent."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import attrs

__all__ = ["AnalyticsEvent"]


def _props(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return dict(value or {})


@attrs.frozen(kw_only=True)
class AnalyticsEvent:
    """One usage event: a name, when, whose (a hashed id) and a few scalar properties."""

    name: str
    at: float
    distinct_id: str
    properties: Mapping[str, Any] = attrs.field(factory=dict, converter=_props)
    # Mixpanel's $insert_id: an event sent twice (spooled at exit while in flight) counts once.
    insert_id: str = attrs.field(factory=lambda: uuid.uuid4().hex)
