"""Working days: the national holiday calendar (versioned reference data) and deadlines counted in working days.

A working day is a Monday to Friday that is no holiday (libur nasional or cuti bersama) of the calendar version
in force for its year, the highest one. Days are counted in the village's local time (WIB, WITA or WIT, by
province; Indonesia has no daylight saving time), so a deadline lands at the same local time of day.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from services.referral.tables import Holiday, HolidayCalendar
from shared.region_codes import WIB, WIT, WITA, local_zone  # noqa: F401  (re-exported: the SLA's zones)

#: The calendars shipped with the code; the migration loads them, the admin API adds later versions.
HOLIDAYS_CSV = Path(__file__).with_name("holidays.csv")
HOLIDAY_KINDS = ("libur-nasional", "cuti-bersama")

@dataclass(frozen=True)
class HolidayRow:
    year: int
    version: int
    date: date
    kind: str
    name: str
    source: str


def shipped_holidays(path: Path = HOLIDAYS_CSV) -> list[HolidayRow]:
    """The rows of the holidays file (year, version, date, kind, name, source), checked as they are read."""
    rows = []
    with path.open(newline="", encoding="utf-8") as f:
        for line in csv.DictReader(f):
            row = HolidayRow(int(line["year"]), int(line["version"]), date.fromisoformat(line["date"]),
                             line["kind"], line["name"], line["source"])
            if row.date.year != row.year or row.kind not in HOLIDAY_KINDS:
                raise ValueError(f"bad holiday row in {path.name}: {line}")
            rows.append(row)
    return rows


async def holidays_in_force(session: AsyncSession, first_year: int, last_year: int) -> set[date]:
    """The holidays of the calendar version in force (the highest) for each year in the range."""
    latest = (sa.select(col(HolidayCalendar.year), sa.func.max(col(HolidayCalendar.version)).label("version"))
              .where(col(HolidayCalendar.year).between(first_year, last_year))
              .group_by(col(HolidayCalendar.year)).subquery())
    query = sa.select(col(Holiday.date)).join(latest, sa.and_(col(Holiday.year) == latest.c.year,
                                                              col(Holiday.version) == latest.c.version))
    return set((await session.execute(query)).scalars().all())


def add_working_days(start: datetime, days: int, holidays: set[date], zone: timezone) -> datetime:
    """The same local time of day on the `days`-th working day after the start's local date."""
    local = start.astimezone(zone)
    day, counted = local.date(), 0
    while counted < days:
        day += timedelta(days=1)
        if day.weekday() < 5 and day not in holidays:
            counted += 1
    return datetime.combine(day, local.timetz()).astimezone(UTC)


async def working_days_after(session: AsyncSession, start: datetime, days: int, village_code: str) -> datetime:
    """`add_working_days` with the calendars in force (at most 366 working days: two calendar years ahead)."""
    holidays = await holidays_in_force(session, start.year, start.year + 2)
    return add_working_days(start, days, holidays, local_zone(village_code))
