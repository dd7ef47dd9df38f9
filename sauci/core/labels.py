"""Worker labels: what ``runs_on`` asks for and what ``sauci worker --labels``
offers; the settings and the pipeline reader check them alike."""

from __future__ import annotations

import re
from typing import Any

from sauci.exceptions import ConfigError

__all__ = ["MAX_LABELS", "label_problem", "lower_labels", "parse_labels"]

MAX_LABELS = 8  # a worker listens on one queue per subset of its labels: 2**8 = 256
_LABEL = r"[A-Za-z0-9_.-]{1,64}"  # compiled by re at its first use


def label_problem(label: str) -> str | None:
    """Why ``label`` cannot be a worker label, or None."""
    if not re.fullmatch(_LABEL, label):
        return (
            f"the label {label!r} is not 1 to 64 letters, digits, '_', '.' or '-' "
            "(labels name broker queues)"
        )
    return None


def lower_labels(value: Any) -> tuple[str, ...]:
    """Labels in lower case, sorted and unique (checked by the validator)."""
    if isinstance(value, str):
        value = value.split(",")
    return tuple(sorted({str(item).strip().lower() for item in value or () if str(item).strip()}))


def parse_labels(value: Any, where: str = "labels") -> tuple[str, ...]:
    """Sorted, unique labels from ``"linux,docker"`` or a list, in lower case
    (labels are case-insensitive, as GitHub's runner labels); ConfigError when bad."""
    labels = lower_labels(value)
    for label in labels:
        problem = label_problem(label)
        if problem:
            raise ConfigError(f"{where}: {problem}")
    if len(labels) > MAX_LABELS:
        raise ConfigError(
            f"{where}: {len(labels)} labels; a worker has at most {MAX_LABELS} "
            "(it listens on one queue per combination of them)"
        )
    return tuple(labels)
