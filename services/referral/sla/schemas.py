"""SLA administration payloads: overrides, escalation delays, holiday calendar versions."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from services.referral.sla.config import Unit
from shared.categories import CATEGORIES, Urgency
from shared.region_codes import REGION_PREFIX_PATTERN

#: The longest duration per unit: a year (beyond it a deadline is no deadline, and two calendar years suffice).
MAX_AMOUNT = {Unit.HOURS: 24 * 366, Unit.DAYS: 366, Unit.WORKING_DAYS: 260}


def to_interval(amount: int, unit: Unit) -> timedelta:
    return timedelta(hours=amount) if unit is Unit.HOURS else timedelta(days=amount)


def from_interval(interval: timedelta, unit: Unit) -> int:
    return int(interval.total_seconds() // 3600) if unit is Unit.HOURS else interval.days


def _check_amounts(unit: Unit, **amounts: int) -> None:
    for name, amount in amounts.items():
        if amount > MAX_AMOUNT[unit]:
            raise ValueError(f"{name} may be at most {MAX_AMOUNT[unit]} {unit.value}")


class OverrideBody(BaseModel):
    """An override's scope (urgency; agency, category, region prefix, each optional) and its durations."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    urgency: Urgency
    agency_id: uuid.UUID | None = Field(default=None, description="An agency known to this service")
    category: str | None = Field(default=None, max_length=60, description="A category of DOMAIN.md §6")
    region_prefix: str | None = Field(default=None, pattern=REGION_PREFIX_PATTERN,
                                      description="A province, regency/city, district or village code")
    respond_within: int = Field(gt=0, description="Until the first response, in `unit`")
    complete_within: int = Field(gt=0, description="Until completion, in `unit`")
    unit: Unit = Unit.HOURS

    @field_validator("category")
    @classmethod
    def _known_category(cls, value: str | None) -> str | None:
        if value is not None and value not in CATEGORIES:
            raise ValueError(f"{value} is not a referral category")
        return value

    @model_validator(mode="after")
    def _durations(self) -> Self:
        _check_amounts(self.unit, respond_within=self.respond_within, complete_within=self.complete_within)
        if self.respond_within > self.complete_within:
            raise ValueError("respond_within may not exceed complete_within")
        return self


class OverridePublic(BaseModel):
    id: int
    urgency: Urgency
    agency_id: uuid.UUID | None
    category: str | None
    region_prefix: str | None
    respond_within: int
    complete_within: int
    unit: Unit
    version: int
    updated_at: datetime


class DelayBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    delay: int = Field(ge=0, description="After the completion deadline, in `unit` (0: at the deadline)")
    unit: Unit = Unit.DAYS

    @model_validator(mode="after")
    def _bounded(self) -> Self:
        _check_amounts(self.unit, delay=self.delay)
        return self


class DelayPublic(BaseModel):
    urgency: Urgency
    delay: int
    unit: Unit
    #: False while the default of DOMAIN.md §6 applies (version 0).
    configured: bool
    version: int


HolidayKind = Literal["libur-nasional", "cuti-bersama"]


class HolidayEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    date: date
    kind: HolidayKind
    name: str = Field(min_length=1, max_length=200)


class CalendarBody(BaseModel):
    """A whole year's holidays: the new version replaces the year's list for deadlines computed from now on."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    year: int = Field(ge=2000, le=2100)
    source: str = Field(min_length=1, max_length=300, description="The decree (SKB) this version follows")
    holidays: list[HolidayEntry] = Field(min_length=1, max_length=60)

    @model_validator(mode="after")
    def _dates_of_the_year(self) -> Self:
        if any(h.date.year != self.year for h in self.holidays):
            raise ValueError(f"every holiday must fall in {self.year}")
        if len({h.date for h in self.holidays}) != len(self.holidays):
            raise ValueError("a date may appear only once")
        return self


class CalendarPublic(BaseModel):
    year: int
    version: int
    source: str
    created_by: str
    created_at: datetime
    #: The highest version of its year: the one deadlines use.
    in_force: bool
    holidays: list[HolidayEntry]
