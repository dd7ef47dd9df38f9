"""Cron schedules for timed builds: parse a 5-field expression, match it, find the next time.

The fields are minute, hour, day of month, month and day of week, with
``*``, lists, ranges, steps (``*/5``, ``1-10/2``, ``5/15`` = ``5-59/15``),
names (jan..dec, sun..sat; 7 is Sunday too) and the macros @hourly, @daily,
@midnight, @weekly, @monthly, @yearly and @annually. As in Vixie cron, when
both day fields are restricted a day matches if either does; a field that
starts with ``*`` (even ``*/2``) counts as unrestricted. Times are UTC: an
aware datetime is converted to UTC, a naive one is taken to be UTC.
"""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta

import attrs

from sauci.exceptions import ConfigError

__all__ = ["CronSchedule"]

_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_MONTHS = {
    m: i
    for i, m in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1
    )
}
_DAYS = {d: i for i, d in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}

# (name, lowest, highest, names) per field, in expression order.
_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day-of-month", 1, 31, {}),
    ("month", 1, 12, _MONTHS),
    ("day-of-week", 0, 7, _DAYS),
)
_SEARCH_YEARS = 30  # a possible schedule matches within 8 years (Feb 29 across 2100)


def _value(text: str, field: str, low: int, high: int, names: dict[str, int]) -> int:
    key = text.lower()
    if key in names:
        return names[key]
    if not text.isdigit():
        known = f" or a name ({', '.join(names)})" if names else ""
        raise ConfigError(f"{field}: {text!r} is not a number{known}")
    value = int(text)
    if not low <= value <= high:
        raise ConfigError(f"{field}: {value} is out of range {low}-{high}")
    return value


def _parse_field(text: str, index: int) -> frozenset[int]:
    field, low, high, names = _FIELDS[index]
    values: set[int] = set()
    for part in text.split(","):
        if not part:
            raise ConfigError(f"{field}: empty list item in {text!r}")
        base, slash, step_text = part.partition("/")
        step = 1
        if slash:
            if not step_text.isdigit() or int(step_text) == 0:
                raise ConfigError(f"{field}: step {step_text!r} must be a whole number above 0")
            step = int(step_text)
        if base == "*":
            start, end = low, high
        elif "-" in base:
            first, _, last = base.partition("-")
            start = _value(first, field, low, high, names)
            end = _value(last, field, low, high, names)
            if start > end:
                raise ConfigError(f"{field}: range {base!r} runs backwards")
        else:
            start = _value(base, field, low, high, names)
            end = high if slash else start  # "5/15" is "5-59/15"
        values.update(range(start, end + 1, step))
    if index == 4 and 7 in values:  # both 0 and 7 are Sunday
        values.discard(7)
        values.add(0)
    return frozenset(values)


@attrs.frozen(kw_only=True)
class CronSchedule:
    """A parsed cron expression; build one with :meth:`parse`."""

    text: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]  # of the month, 1-31
    months: frozenset[int]  # 1-12
    weekdays: frozenset[int]  # 0-6, Sunday is 0
    days_restricted: bool  # the day-of-month field does not start with "*"
    weekdays_restricted: bool

    @classmethod
    def parse(cls, text: str) -> CronSchedule:
        """Parse ``text``; ConfigError says what is wrong and where."""
        if not isinstance(text, str):
            raise ConfigError(f"a cron schedule must be text, not {type(text).__name__}")
        expr = text.strip()
        if expr.startswith("@"):
            if expr.lower() not in _MACROS:
                raise ConfigError(
                    f"cron schedule {text!r}: unknown macro; use one of {', '.join(_MACROS)}"
                )
            expr = _MACROS[expr.lower()]
        fields = expr.split()
        if len(fields) != 5:
            raise ConfigError(
                f"cron schedule {text!r}: expected 5 fields (minute hour day-of-month month "
                f"day-of-week), got {len(fields)}"
            )
        try:
            parsed = [_parse_field(f, i) for i, f in enumerate(fields)]
        except ConfigError as exc:
            raise ConfigError(f"cron schedule {text!r}: {exc}") from None
        schedule = cls(
            text=text,
            minutes=parsed[0],
            hours=parsed[1],
            days=parsed[2],
            months=parsed[3],
            weekdays=parsed[4],
            days_restricted=not fields[2].startswith("*"),
            weekdays_restricted=not fields[4].startswith("*"),
        )
        if not schedule._possible():
            raise ConfigError(f"cron schedule {text!r} never matches: no such day in those months")
        return schedule

    def _possible(self) -> bool:
        if self.weekdays_restricted and self.days_restricted:
            return True  # either day field may match, and every weekday occurs
        if self.weekdays_restricted:
            return True  # any weekday occurs in every month
        longest = max(29 if m == 2 else calendar.monthrange(2001, m)[1] for m in self.months)
        return min(self.days) <= longest

    def _day_matches(self, year: int, month: int, day: int) -> bool:
        in_days = day in self.days
        # Python's weekday() is Monday=0; cron's is Sunday=0.
        in_weekdays = (calendar.weekday(year, month, day) + 1) % 7 in self.weekdays
        if self.days_restricted and self.weekdays_restricted:
            return in_days or in_weekdays
        return in_days and in_weekdays

    def matches(self, when: datetime) -> bool:
        """True if the schedule fires in the minute of ``when`` (seconds are ignored)."""
        t = _utc(when)
        return (
            t.minute in self.minutes
            and t.hour in self.hours
            and t.month in self.months
            and self._day_matches(t.year, t.month, t.day)
        )

    def next_after(self, when: datetime) -> datetime:
        """The first minute strictly after ``when`` at which the schedule fires.

        Skips whole months, days and hours that cannot match, so a yearly
        schedule costs a few dozen steps, not half a million minutes. The
        result is naive if ``when`` is naive, else aware in UTC.
        """
        t = _utc(when).replace(second=0, microsecond=0) + timedelta(minutes=1)
        limit = t.year + _SEARCH_YEARS
        while t.year <= limit:
            if t.month not in self.months:
                t = _next_month(t)
                continue
            if not self._day_matches(t.year, t.month, t.day):
                t = t.replace(hour=0, minute=0) + timedelta(days=1)
                continue
            if t.hour not in self.hours:
                later = [h for h in self.hours if h > t.hour]
                if later:
                    t = t.replace(hour=min(later), minute=0)
                else:
                    t = t.replace(hour=0, minute=0) + timedelta(days=1)
                continue
            if t.minute not in self.minutes:
                later = [m for m in self.minutes if m > t.minute]
                if later:
                    t = t.replace(minute=min(later))
                else:
                    t = t.replace(minute=0) + timedelta(hours=1)
                continue
            return t if when.tzinfo is not None else t.replace(tzinfo=None)
        raise ConfigError(f"cron schedule {self.text!r}: no match within {_SEARCH_YEARS} years")


def _utc(when: datetime) -> datetime:
    if when.tzinfo is None:
        return when.replace(tzinfo=UTC)
    return when.astimezone(UTC)


def _next_month(t: datetime) -> datetime:
    if t.month == 12:
        return t.replace(year=t.year + 1, month=1, day=1, hour=0, minute=0)
    return t.replace(month=t.month + 1, day=1, hour=0, minute=0)
