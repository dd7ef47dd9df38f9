"""Cron schedules for timed builds, through cronsim: parse, match, find the next time.

The fields are minute, hour, day of month, month and day of week, as Debian
cron reads them (cronsim follows it): ``*``, lists, ranges, steps (``*/5``,
``1-10/2``, ``5/15`` = ``5-59/15``), names (jan..dec, sun..sat; 7 is Sunday
too), and cronsim's ``L``, ``LW`` and ``fri#3``. The macros @hourly, @daily,
@midnight, @weekly, @monthly, @yearly and @annually are read through a small
table. When both day fields are restricted a day matches if either does; a
field that starts with ``*`` (even ``*/2``) counts as unrestricted. Times are
UTC: an aware datetime is converted to UTC, a naive one is taken to be UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime

import attrs
from cronsim import CronSim, CronSimError

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
# What each field accepts, in expression order: said when cronsim refuses one.
_FIELDS = (
    ("minute", "0-59"),
    ("hour", "0-23"),
    ("day-of-month", "1-31, L or LW"),
    ("month", "1-12 or jan-dec"),
    ("day-of-week", "0-7 or sun-sat (0 and 7 are Sunday), mon#2 or 5L"),
)
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def _field(name: str, doc: str | None = None) -> property:
    """A read-only view of the values cronsim parsed for one field."""
    return property(lambda self: frozenset(getattr(self._sim, name)), doc=doc)


@attrs.frozen(kw_only=True)
class CronSchedule:
    """A parsed cron expression; build one with :meth:`parse`."""

    text: str
    expression: str  # the five fields (a macro written out)
    _sim: CronSim = attrs.field(eq=False, repr=False)  # parsed fields; never iterated

    # The values each field allows, from cronsim's parse.
    minutes = _field("minutes")
    hours = _field("hours")
    days = _field("days", "Days of the month, 1-31 (cronsim's markers for ``L`` and ``LW`` too).")
    months = _field("months")

    @property
    def weekdays(self) -> frozenset[object]:
        """0-6, Sunday is 0 (and cronsim's ``(day, nth)`` pairs for ``#`` and ``L``)."""
        return frozenset(d % 7 if isinstance(d, int) else d for d in self._sim.weekdays)

    @classmethod
    def parse(cls, text: str) -> CronSchedule:
        """Parse ``text``; ConfigError says what is wrong and in which field."""
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
        if len(fields) != 5:  # cronsim would take six (seconds first): cron has five
            raise ConfigError(
                f"cron schedule {text!r}: expected 5 fields (minute hour day-of-month month "
                f"day-of-week), got {len(fields)}"
            )
        try:
            sim = CronSim(expr, _EPOCH)
        except CronSimError as exc:
            raise ConfigError(f"cron schedule {text!r}: {_problem(fields, exc)}") from None
        return cls(text=text, expression=expr, sim=sim)

    def matches(self, when: datetime) -> bool:
        """True if the schedule fires in the minute of ``when`` (seconds are ignored)."""
        t = _utc(when)
        sim = self._sim
        return (
            t.minute in sim.minutes
            and t.hour in sim.hours
            and t.month in sim.months
            and sim.match_day(t.date())
        )

    def next_after(self, when: datetime) -> datetime:
        """The first minute strictly after ``when`` at which the schedule fires.

        The result is naive if ``when`` is naive, else aware in UTC.
        """
        try:
            found = next(CronSim(self.expression, _utc(when)))
        except StopIteration:  # cronsim looks 50 years ahead
            raise ConfigError(f"cron schedule {self.text!r}: no match within 50 years") from None
        return found if when.tzinfo is not None else found.replace(tzinfo=None)


def _problem(fields: list[str], exc: CronSimError) -> str:
    """cronsim's "Bad <field>", said with the field's text and what it accepts."""
    message = str(exc)
    for index, (name, accepts) in enumerate(_FIELDS):
        if message == f"Bad {name}":
            part = fields[index]
            if index == 2 and _valid_alone(f"0 0 {part} * *"):
                # Each field is fine; no month in the month field has such a day.
                return f"never matches: no day {part} in months {fields[3]!r}"
            return (
                f"{name} field {part!r} is not valid (expected {accepts}; *, lists, ranges, /steps)"
            )
    return message


def _valid_alone(expr: str) -> bool:
    try:
        CronSim(expr, _EPOCH)
    except CronSimError:
        return False
    return True


def _utc(when: datetime) -> datetime:
    if when.tzinfo is None:
        return when.replace(tzinfo=UTC)
    return when.astimezone(UTC)
