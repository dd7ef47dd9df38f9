"""Cron schedules (cronsim): parsing (with clear errors), matching with Vixie and
Debian cron's day rule, and next_after checked against brute force."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from sauci.exceptions import ConfigError
from sauci.triggers import CronSchedule


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "field", "expected"),
    [
        ("*/15 * * * *", "minutes", {0, 15, 30, 45}),
        ("1-10/3 * * * *", "minutes", {1, 4, 7, 10}),
        ("5/20 * * * *", "minutes", {5, 25, 45}),
        ("0 9-17/4,23 * * *", "hours", {9, 13, 17, 23}),
        ("0 0 1,15 * *", "days", {1, 15}),
        ("0 0 * JAN,mar-May *", "months", {1, 3, 4, 5}),
        ("0 0 * * mon-fri", "weekdays", {1, 2, 3, 4, 5}),
        ("0 0 * * 7", "weekdays", {0}),
        ("0 0 * * 5-7", "weekdays", {0, 5, 6}),
    ],
)
def test_fields_parse_to_their_values(text, field, expected):
    assert expected == set(getattr(CronSchedule.parse(text), field))


@pytest.mark.parametrize(
    ("macro", "same_as"),
    [("@hourly", "0 * * * *"), ("@daily", "0 0 * * *"), ("@midnight", "0 0 * * *"),
     ("@weekly", "0 0 * * 0"), ("@monthly", "0 0 1 * *"), ("@yearly", "0 0 1 1 *"),
     ("@annually", "0 0 1 1 *")],
)  # fmt: skip
def test_macros(macro, same_as):
    a, b = CronSchedule.parse(macro), CronSchedule.parse(same_as)
    t = at(2024, 5, 17, 13, 42)
    assert b.next_after(t) == a.next_after(t)


# cronsim (which follows Debian cron) parses the fields now; it says only which
# field it refuses ("Bad minute"), so the message names the field, quotes its
# text and says what the field accepts, instead of the old parser's own words.
@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("* * * *", "expected 5 fields (minute hour day-of-month month day-of-week), got 4"),
        ("* * * * * *", "expected 5 fields"),  # cronsim's seconds field is not cron's
        ("60 * * * *", "minute field '60' is not valid (expected 0-59"),
        ("* 24 * * *", "hour field '24' is not valid (expected 0-23"),
        ("* * 0 * *", "day-of-month field '0' is not valid (expected 1-31"),
        ("* * * 13 *", "month field '13' is not valid (expected 1-12 or jan-dec"),
        ("* * * * 8", "day-of-week field '8' is not valid (expected 0-7 or sun-sat"),
        ("*/0 * * * *", "minute field '*/0' is not valid"),
        ("10-5 * * * *", "minute field '10-5' is not valid"),
        ("* * * foo *", "month field 'foo' is not valid (expected 1-12 or jan-dec"),
        ("1,,2 * * * *", "minute field '1,,2' is not valid"),
        ("@reboot", "unknown macro"),
        ("0 0 30 feb *", "never matches: no day 30 in months 'feb'"),
        ("", "expected 5 fields"),
    ],
)
def test_bad_schedules_say_what_is_wrong(text, message):
    with pytest.raises(ConfigError) as info:
        CronSchedule.parse(text)
    assert message in str(info.value)
    assert repr(text) in str(info.value)


def test_both_day_fields_restricted_means_either_matches():
    # Vixie cron: "the 13th, or any Friday".
    s = CronSchedule.parse("0 0 13 * fri")
    assert s.matches(at(2024, 3, 13, 0, 0))  # a Wednesday
    assert s.matches(at(2024, 3, 8, 0, 0))  # a Friday
    assert not s.matches(at(2024, 3, 12, 0, 0))


def test_a_star_day_field_means_both_must_match():
    # "*/2" starts with "*", so it counts as unrestricted: odd days that are Mondays.
    s = CronSchedule.parse("0 0 */2 * mon")
    assert s.matches(at(2024, 3, 11, 0, 0))  # Monday the 11th
    assert not s.matches(at(2024, 3, 4, 0, 0))  # Monday the 4th (even)
    assert not s.matches(at(2024, 3, 13, 0, 0))  # Wednesday the 13th


def test_matches_ignores_seconds_and_converts_to_utc():
    s = CronSchedule.parse("30 12 * * *")
    assert s.matches(datetime(2024, 1, 1, 12, 30, 59))
    assert s.matches(datetime(2024, 1, 1, 14, 30, tzinfo=timezone(timedelta(hours=2))))


def test_next_after_examples():
    assert at(2028, 2, 29) == CronSchedule.parse("0 0 29 2 *").next_after(at(2024, 3, 1))
    assert at(2024, 3, 4, 9) == CronSchedule.parse("0 9 * * mon-fri").next_after(at(2024, 3, 1, 9))
    assert at(2025, 1, 1) == CronSchedule.parse("@yearly").next_after(at(2024, 1, 1))
    # Naive in, naive out; aware in, aware UTC out.
    naive = CronSchedule.parse("* * * * *").next_after(datetime(2024, 12, 31, 23, 59, 30))
    assert datetime(2025, 1, 1, 0, 0) == naive and naive.tzinfo is None


def test_next_after_skips_a_year_divisible_by_100_that_is_not_leap():
    # The old parser's test also timed this (skipping by fields, not minutes);
    # cronsim does the search now, and a wall-time assertion is not a test.
    s = CronSchedule.parse("0 0 29 2 *")  # every four (or eight) years
    assert at(2104, 2, 29) == s.next_after(at(2096, 3, 1))


def field(low: int, high: int) -> st.SearchStrategy[str]:
    number = st.integers(low, high)
    single = number.map(str)
    ranged = st.tuples(number, number).map(lambda t: f"{min(t)}-{max(t)}")
    stepped = st.tuples(st.sampled_from(["*"]) | ranged, st.integers(1, high)).map(
        lambda t: f"{t[0]}/{t[1]}"
    )
    item = single | ranged | stepped
    return st.just("*") | st.lists(item, min_size=1, max_size=3).map(",".join)


schedules = st.tuples(field(0, 59), field(0, 23), field(1, 31), field(1, 12), field(0, 7)).map(
    " ".join
)
# Frequent schedules: every hour of every day, so the brute-force window stays small.
frequent = st.tuples(field(0, 59), st.just("*"), st.just("*"), st.just("*"), field(0, 7)).map(
    " ".join
)
moments = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2200, 1, 1))


def parse_or_skip(text: str) -> CronSchedule:
    try:
        return CronSchedule.parse(text)
    except ConfigError:
        assume(False)
        raise


@settings(max_examples=300, deadline=None)
@given(text=schedules, t=moments)
def test_next_after_is_later_and_matches(text, t):
    s = parse_or_skip(text)
    n = s.next_after(t)
    assert n > t
    assert s.matches(n)
    assert n.second == 0 and n.microsecond == 0


@settings(max_examples=200, deadline=None)
@given(text=frequent, t=moments)
def test_no_matching_minute_is_skipped(text, t):
    s = parse_or_skip(text)
    n = s.next_after(t)
    assert n - t <= timedelta(days=8)
    minute = t.replace(second=0, microsecond=0) + timedelta(minutes=1)
    while minute < n:
        assert not s.matches(minute), minute
        minute += timedelta(minutes=1)


@settings(max_examples=100, deadline=None)
@given(text=schedules, t=moments)
def test_next_after_never_skips_a_match_in_the_next_two_days(text, t):
    s = parse_or_skip(text)
    n = s.next_after(t)
    minute = t.replace(second=0, microsecond=0) + timedelta(minutes=1)
    end = min(n, minute + timedelta(days=2))
    while minute < end:
        assert not s.matches(minute), minute
        minute += timedelta(minutes=1)
