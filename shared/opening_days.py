"""A posyandu's opening days (hari buka) from its monthly rule and its dated exceptions.

One computation for both sides: the registry owns the schedule and lists its days; the household service opens a
session only on one of them, from the schedule it learnt from the registry's events (so the two never disagree).
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import StrEnum


class Ordinal(StrEnum):
    """Which weekday of the month: the first .. fourth, or the last (a fifth one exists only in some months)."""

    FIRST = "first"
    SECOND = "second"
    THIRD = "third"
    FOURTH = "fourth"
    LAST = "last"


class Weekday(StrEnum):
    MONDAY = "monday"
    TUESDAY = "tuesday"
    WEDNESDAY = "wednesday"
    THURSDAY = "thursday"
    FRIDAY = "friday"
    SATURDAY = "saturday"
    SUNDAY = "sunday"


class DayKind(StrEnum):
    """Why a date is an opening day: the monthly rule, an extra date, or a rule day moved to this date."""

    RULE = "rule"
    EXTRA = "extra"
    MOVED = "moved"


_ORDINAL_INDEX = {Ordinal.FIRST: 0, Ordinal.SECOND: 1, Ordinal.THIRD: 2, Ordinal.FOURTH: 3}
_WEEKDAYS = list(Weekday)


@dataclass(frozen=True)
class MonthlyRule:
    ordinal: Ordinal
    weekday: Weekday

    def day_in(self, year: int, month: int) -> date:
        """The rule's day in one month, e.g. the second Tuesday of March 2026."""
        weekday = _WEEKDAYS.index(self.weekday)
        if self.ordinal is Ordinal.LAST:
            last = date(year, month, calendar.monthrange(year, month)[1])
            return last - timedelta(days=(last.weekday() - weekday) % 7)
        first = date(year, month, 1)
        return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * _ORDINAL_INDEX[self.ordinal])

    def days(self, start: date, end: date) -> Iterator[date]:
        """The rule's days from start to end, both included."""
        year, month = start.year, start.month
        while (year, month) <= (end.year, end.month):
            day = self.day_in(year, month)
            if start <= day <= end:
                yield day
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)


@dataclass(frozen=True)
class OpeningDay:
    date: dt.date
    kind: DayKind
    #: For a moved day: the rule day it replaces.
    moved_from: dt.date | None = None


@dataclass(frozen=True)
class Schedule:
    """A monthly rule (or none: only explicit dates) with extra, moved (from -> to) and cancelled dates."""

    rule: MonthlyRule | None = None
    extra: frozenset[date] = frozenset()
    moved: dict[date, date] = field(default_factory=dict)
    cancelled: frozenset[date] = frozenset()

    def rule_days(self, start: date, end: date) -> set[date]:
        return set(self.rule.days(start, end)) if self.rule is not None else set()

    def opening_days(self, start: date, end: date) -> list[OpeningDay]:
        """The concrete opening days from start to end (both included), in date order."""
        days = [OpeningDay(d, DayKind.RULE) for d in self.rule_days(start, end)
                if d not in self.cancelled and d not in self.moved]
        days += [OpeningDay(d, DayKind.EXTRA) for d in self.extra if start <= d <= end]
        days += [OpeningDay(to, DayKind.MOVED, moved_from=frm) for frm, to in self.moved.items() if start <= to <= end]
        return sorted(days, key=lambda d: d.date)

    def is_opening_day(self, day: date) -> bool:
        return any(d.date == day for d in self.opening_days(day, day))
