"""Durations and sizes as written in .sauci.yml (sauci/core/pipeline/_units.py)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sauci.core.pipeline._units import (
    format_duration,
    format_size,
    parse_duration,
    parse_size,
)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90.0),
        ("10m", 600.0),
        ("1h", 3600.0),
        ("1h30m", 5400.0),
        ("1h 30m", 5400.0),
        ("500ms", 0.5),
        ("1.5h", 5400.0),
        ("2d", 172800.0),
        ("1m30s", 90.0),
        ("90", 90.0),
        ("0.25", 0.25),
        (".5s", 0.5),
        ("10M", 600.0),  # units are case-insensitive; M is minutes in a duration
        ("0s", 0.0),
        ("300ms", 0.3),
    ],
)
def test_parse_duration_reads_units_and_bare_seconds(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "-5s", "1h30", "10 minutes", "1e3", "s", "1.2.3s"])
def test_parse_duration_rejects_what_is_not_a_duration(text: str) -> None:
    with pytest.raises(ValueError, match="expected a duration such as 90s, 10m or 1h"):
        parse_duration(text)


def test_parse_duration_rejects_very_long_text_without_heavy_work() -> None:
    with pytest.raises(ValueError):
        parse_duration("9" * 100_000 + "s")


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("512MiB", 512 * 1024**2),
        ("1G", 1024**3),
        ("256M", 256 * 1024**2),
        ("1.5GiB", 1536 * 1024**2),
        ("1024", 1024),
        ("100MB", 100_000_000),
        ("2Gi", 2 * 1024**3),
        ("64k", 64 * 1024),
        ("1 TiB", 1024**4),
        ("10b", 10),
        ("1.3K", 1331),  # fractions of a byte are dropped
    ],
)
def test_parse_size_reads_binary_and_si_units(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "lots", "1X", "-1G", "1GiBs", "G"])
def test_parse_size_rejects_what_is_not_a_size(text: str) -> None:
    with pytest.raises(ValueError, match="expected a size such as 512MiB"):
        parse_size(text)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (90.0, "1m30s"),
        (3600.0, "1h"),
        (5400.0, "1h30m"),
        (0.5, "500ms"),
        (86400.0, "1d"),
        (0.0, "0s"),
    ],
)
def test_format_duration_writes_the_shortest_unit_text(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_format_duration_falls_back_to_repr_when_no_unit_text_is_exact() -> None:
    assert format_duration(1e-7) == "1e-07"


@given(st.floats(min_value=0, max_value=1e9, allow_nan=False))
@settings(max_examples=300, deadline=None)
def test_format_duration_text_parses_back_exactly_or_is_rejected(seconds: float) -> None:
    text = format_duration(seconds)
    try:
        parsed = parse_duration(text)
    except ValueError:
        return  # writers then emit a plain number
    assert parsed == seconds


@pytest.mark.parametrize(
    ("size", "text"),
    [(512 * 1024**2, "512MiB"), (1024**3, "1GiB"), (1000, "1000"), (3 * 1024, "3KiB")],
)
def test_format_size_uses_the_largest_exact_binary_unit(size: int, text: str) -> None:
    assert format_size(size) == text


@given(st.integers(min_value=1, max_value=2**63 - 1))
def test_format_size_parses_back_exactly(size: int) -> None:
    assert parse_size(format_size(size)) == size
