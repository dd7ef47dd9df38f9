"""attrs converters and checks shared by the value objects of sauci.core.models,
sauci.core.records and sauci.core.step_parts (kept apart so that those
modules import it, never each other's private helpers)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "RETRY_KINDS", "as_tuple", "frozen_map", "retry_kinds", "service_name_problem", "str_tuple",
]  # fmt: skip

# Step.retry_when: which failures are tried again (sauci.core.step_retry says what each is).
RETRY_KINDS = ("exit", "timeout", "resource", "sandbox", "any")


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


_SERVICE_NAME = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"  # compiled at the first service


def service_name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a service (a DNS label), or None."""
    if not re.match(_SERVICE_NAME, name):
        return (
            "is not a DNS label: use 1 to 63 lower-case letters, digits and '-', "
            "starting and ending with a letter or digit"
        )
    return None


def retry_kinds(value: Any) -> tuple[str, ...]:
    """Step.retry_when as a tuple; ValueError naming a kind not in RETRY_KINDS."""
    kinds = str_tuple(value)
    for kind in kinds:
        if kind not in RETRY_KINDS:
            raise ValueError(f"retry_when: {kind!r} is not one of {', '.join(RETRY_KINDS)}")
    return kinds
