"""attrs converters and checks shared by the value objects of sauci.core.models,
sauci.core.records and sauci.core.pipeline_parts (kept apart so that those
modules import it, never each other's private helpers)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["as_tuple", "frozen_map", "service_name_problem", "str_tuple"]


def frozen_map(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return dict(value or {})


def as_tuple(value: Iterable[Any]) -> tuple[Any, ...]:
    """``tuple``, as a converter: attrs asks ``inspect.signature`` about each
    converter, and for the builtin that means tokenizing its text signature."""
    return tuple(value)


def str_tuple(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(value)


_SERVICE_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


def service_name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a service (a DNS label), or None."""
    if not _SERVICE_NAME.match(name):
        return (
            "is not a DNS label: use 1 to 63 lower-case letters, digits and '-', "
            "starting and ending with a letter or digit"
        )
    return None
