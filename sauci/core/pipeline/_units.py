"""Durations and sizes as people write them in ``.sauci.yml``: ``1h30m``, ``512MiB``.

Arithmetic is done on integers and divided once at the end, so that a value
formatted by :func:`format_duration` parses back to exactly the same float.
"""

from __future__ import annotations

import math
import re

__all__ = ["exact_duration", "format_duration", "format_size", "parse_duration", "parse_size"]

# Long enough for any sensible value, short enough that int() never meets
# Python's limit on digits (and that a hostile file cannot make us work hard).
_MAX_TEXT = 64

# Patterns, compiled by ``re`` (and kept in its cache) when a value is first
# read: most pipelines write no duration or size, and most commands read none.
_NUMBER = r"(\d+(?:\.\d*)?|\.\d+)"
_BARE = r"\s*" + _NUMBER + r"\s*"
_DURATION = r"(?i)\s*(?:" + _NUMBER + r"\s*(?:ms|s|m|h|d)\s*)+"
_DURATION_PART = r"(?i)" + _NUMBER + r"\s*(ms|s|m|h|d)"
_SIZE = r"(?i)\s*" + _NUMBER + r"\s*([a-z]*)\s*"

_MS_PER_UNIT = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}

# Single letters and the "i" forms are powers of 1024, as in Docker, systemd
# and Kubernetes' Mi/Gi; "KB", "MB", ... are SI powers of 1000.
_BYTES_PER_UNIT = {
    "": 1,
    "b": 1,
    "k": 1024,
    "ki": 1024,
    "kib": 1024,
    "kb": 1000,
    "m": 1024**2,
    "mi": 1024**2,
    "mib": 1024**2,
    "mb": 1000**2,
    "g": 1024**3,
    "gi": 1024**3,
    "gib": 1024**3,
    "gb": 1000**3,
    "t": 1024**4,
    "ti": 1024**4,
    "tib": 1024**4,
    "tb": 1000**4,
}

DURATION_EXAMPLES = "90s, 10m or 1h"
SIZE_EXAMPLES = "512MiB, 1G or 1.5GiB"


def _scaled(number: str) -> tuple[int, int]:
    """``"1.25"`` -> ``(125, 2)``: the digits as an int and the decimal places."""
    whole, _, frac = number.partition(".")
    return int((whole + frac) or "0"), len(frac)


def parse_duration(text: str) -> float:
    """Seconds in ``90s``, ``10m``, ``1h30m``, ``500ms``, ``1.5h``, ``2d`` or ``90``.

    Raises ValueError when the text is not a duration. Zero is returned as
    0.0; deciding whether that is allowed is up to the caller.
    """
    if len(text) > _MAX_TEXT:
        raise ValueError(f"expected a duration such as {DURATION_EXAMPLES}, got a long text")
    bare = re.fullmatch(_BARE, text)
    if bare:
        parts = [(bare.group(1), "s")]
    elif re.fullmatch(_DURATION, text):
        parts = re.findall(_DURATION_PART, text)
    else:
        raise ValueError(f"expected a duration such as {DURATION_EXAMPLES}, got {text!r}")
    scaled = [(*_scaled(number), _MS_PER_UNIT[unit.lower()]) for number, unit in parts]
    places = max(p for _, p, _ in scaled)
    total = sum(digits * 10 ** (places - p) * ms for digits, p, ms in scaled)
    return total / (1000 * 10**places)


def parse_size(text: str) -> int:
    """Bytes in ``512MiB``, ``1G``, ``256M``, ``1.5GiB``, ``100MB`` or ``1024``.

    Fractions of a byte are dropped. Raises ValueError for anything else.
    """
    match = re.fullmatch(_SIZE, text) if len(text) <= _MAX_TEXT else None
    unit = _BYTES_PER_UNIT.get(match.group(2).lower()) if match else None
    if match is None or unit is None:
        raise ValueError(f"expected a size such as {SIZE_EXAMPLES}, got {text!r}")
    digits, places = _scaled(match.group(1))
    return digits * unit // 10**places


def format_duration(seconds: float) -> str:
    """The shortest of ``1h30m``-style text that parses back to exactly ``seconds``.

    Falls back to ``repr`` (for example ``1e-07``) when no such text exists;
    that is fine in messages, and :func:`parse_duration` rejects it, so a
    writer can tell it must emit a plain number instead.
    """
    return exact_duration(seconds) or repr(seconds)


def exact_duration(seconds: float) -> str | None:
    """The shortest ``1h30m``-style text that parses back to exactly ``seconds``, or None."""
    if not math.isfinite(seconds) or seconds < 0:
        return None
    text = _format_ms(round(seconds * 1000))
    try:
        if parse_duration(text) == seconds:
            return text
    except ValueError:
        pass
    return None


def _format_ms(ms: int) -> str:
    if ms == 0:
        return "0s"
    parts = []
    for unit in ("d", "h", "m", "s", "ms"):
        count, ms = divmod(ms, _MS_PER_UNIT[unit])
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def format_size(size: int) -> str:
    """``536870912`` -> ``512MiB``; a size that is no whole number of KiB stays digits."""
    for unit in ("TiB", "GiB", "MiB", "KiB"):
        factor = _BYTES_PER_UNIT[unit.lower()]
        if size >= factor and size % factor == 0:
            return f"{size // factor}{unit}"
    return str(size)
