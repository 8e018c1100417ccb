"""Schedule payloads: the whole schedule as written (PUT) and read, and the opening days of a date range."""

from __future__ import annotations

import datetime as dt
import uuid
from datetime import date, datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from shared.iso_dates import iso_or_none
from shared.opening_days import DayKind, Ordinal, Weekday

#: Dates a schedule may name: from the system's first records to well beyond any plan.
FIRST_DATE, LAST_DATE = date(2000, 1, 1), date(2100, 12, 31)
#: At most this many dated exceptions of each kind in one schedule.
MAX_EXCEPTIONS = 200
#: The longest range the opening-days list computes at once.
MAX_RANGE_DAYS = 732

ScheduleDate = Annotated[date, iso_or_none, Field(ge=FIRST_DATE, le=LAST_DATE)]
Reason = Annotated[str, Field(min_length=1, max_length=200, description="Why, e.g. 'Idul Fitri' or 'imunisasi BIAN'")]


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class MonthlyRule(_Input):
    """E.g. `{"ordinal": "second", "weekday": "tuesday"}`: the second Tuesday of every month."""

    ordinal: Ordinal
    weekday: Weekday


class ExtraDay(_Input):
    date: ScheduleDate
    reason: Reason


class MovedDay(_Input):
    from_date: ScheduleDate = Field(description="A day of the monthly rule")
    to_date: ScheduleDate
    reason: Reason


class CancelledDay(_Input):
    date: ScheduleDate = Field(description="A day of the monthly rule")
    reason: Reason


class ScheduleWrite(_Input):
    """The whole schedule: what is not listed is no longer an exception."""

    rule: MonthlyRule | None = Field(description="The monthly opening day; null: only the extra days")
    extra_days: list[ExtraDay] = Field(default_factory=list, max_length=MAX_EXCEPTIONS)
    moved_days: list[MovedDay] = Field(default_factory=list, max_length=MAX_EXCEPTIONS)
    cancelled_days: list[CancelledDay] = Field(default_factory=list, max_length=MAX_EXCEPTIONS)


class SchedulePublic(BaseModel):
    posyandu_id: uuid.UUID
    rule: MonthlyRule | None
    extra_days: list[ExtraDay]
    moved_days: list[MovedDay]
    cancelled_days: list[CancelledDay]
    #: 0 until the first schedule is written.
    version: int
    updated_at: datetime | None


class OpeningDayPublic(BaseModel):
    date: dt.date
    kind: DayKind
    moved_from: dt.date | None = None
    reason: str | None = Field(default=None, description="The reason of an extra or moved day")


class OpeningDays(BaseModel):
    posyandu_id: uuid.UUID
    start: date
    end: date
    items: list[OpeningDayPublic]
