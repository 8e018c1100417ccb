"""The bounds of the dates the household service takes (README: "Dates").

Nothing is dated in the future beyond one day of clock skew: the servers run on UTC while a kader in WIT (UTC+9)
is up to a day ahead, and a baby born or a child weighed on their today must not be refused. Nothing is dated
before DATE_FLOOR (no living person was born before 1900) and KK numbers not before KK_ISSUE_FLOOR.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import Annotated

from pydantic import AfterValidator

from shared.iso_dates import iso_or_none

DATE_FLOOR = date(1900, 1, 1)
#: No 16-digit KK number was issued before this (the number came with computerised civil registration).
KK_ISSUE_FLOOR = date(1970, 1, 1)
CLOCK_SKEW = timedelta(days=1)
#: An expected delivery date at most this far ahead (conception + 280 days, recorded from the first weeks)...
MAX_DELIVERY_AHEAD = timedelta(days=300)
#: ... and at most this far behind: an overdue pregnancy (induced by 42 weeks) plus the months until the kader
#: records the birth at the next monthly posyandu day.
MAX_DELIVERY_OVERDUE = timedelta(days=90)


def latest_allowed(today: date | None = None) -> date:
    """The latest date an event may carry: today plus the clock skew."""
    return (today or date.today()) + CLOCK_SKEW


def check_past(value: date, *, floor: date = DATE_FLOOR, today: date | None = None) -> date:
    """The date, if it is neither in the future (beyond the skew) nor before the floor; ValueError otherwise."""
    if value > latest_allowed(today):
        raise ValueError("is in the future")
    if value < floor:
        raise ValueError(f"is before {floor.isoformat()}")
    return value


def check_expected_delivery(value: date, *, today: date | None = None) -> date:
    """An expected delivery date a current pregnancy can have; ValueError otherwise."""
    today = today or date.today()
    if value > today + MAX_DELIVERY_AHEAD:
        raise ValueError(f"is more than {MAX_DELIVERY_AHEAD.days} days ahead")
    if value < today - MAX_DELIVERY_OVERDUE:
        raise ValueError(f"is more than {MAX_DELIVERY_OVERDUE.days} days past: record the birth instead")
    return value


def _optional(check: Callable[[date], date]) -> Callable[[date | None], date | None]:
    return lambda value: None if value is None else check(value)


#: A date that has happened: a birth, an observation, a measurement.
PastDate = Annotated[date, iso_or_none, AfterValidator(lambda value: check_past(value))]
#: The same checks around an optional date (wrapping the whole `date | None`, so errors name the field only).
past_or_none = AfterValidator(_optional(lambda value: check_past(value)))
expected_delivery_or_none = AfterValidator(_optional(lambda value: check_expected_delivery(value)))


def age_in_years(birth_date: date, on: date) -> int:
    """Whole years; someone born on 29 February has a birthday on 1 March in common years."""
    return on.year - birth_date.year - ((on.month, on.day) < (birth_date.month, birth_date.day))


def age_in_months(birth_date: date, on: date) -> int:
    """Whole months: a month is complete on the same day of the month (or later)."""
    return (on.year - birth_date.year) * 12 + on.month - birth_date.month - (on.day < birth_date.day)
