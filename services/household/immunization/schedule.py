"""The national immunisation schedule as versioned data: the models, their checks, and the checked-in file.

A version is a whole schedule (every dose row) with the day it comes into force; the version in force on a day is
the one with the latest ``valid_from`` on or before it. Versions are never edited: a change is a new version.
``schedule.csv`` beside this module holds the national versions; the household migration 0006 seeds them and the
admin API adds later ones (README "Immunisation").
"""

from __future__ import annotations

import csv
import itertools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from shared.iso_dates import IsoDate

SCHEDULE_FILE = Path(__file__).with_name("schedule.csv")

_AGE = re.compile(r"^(\d{1,3})([dm])$")
#: No dose of a childhood schedule is due later than this (the parsed ages are bounded by it).
MAX_AGE_DAYS = 19 * 366
VaccineCode = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,29}$", description="e.g. `bcg`, `dpt-hb-hib`")]
Age = Annotated[str, Field(pattern=_AGE.pattern, description="`<n>d` (days) or `<n>m` (calendar months)",
                           examples=["0d", "2m", "18m"])]


def add_months(day: date, months: int) -> date:
    """The same day `months` calendar months later (the month's last day when it is shorter)."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    for candidate in (day.day, 30, 29, 28):
        try:
            return date(year, month, min(day.day, candidate))
        except ValueError:
            continue
    raise AssertionError("unreachable")


def reached(birth_date: date, age: str) -> date:
    """The day a child born on `birth_date` reaches `age` (`<n>d` or `<n>m`)."""
    match = _AGE.match(age)
    if match is None:
        raise ValueError(f"not an age: {age!r}")
    n, unit = int(match.group(1)), match.group(2)
    return birth_date + timedelta(days=n) if unit == "d" else add_months(birth_date, n)


def _days(age: str) -> int:
    """An age in (approximate) days, to order ages and bound them: months count 30.4375 days."""
    match = _AGE.match(age)
    assert match is not None
    n = int(match.group(1))
    return n if match.group(2) == "d" else round(n * 30.4375)


class ScheduleRow(BaseModel):
    """One dose of the schedule."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    vaccine: VaccineCode
    name: str = Field(min_length=1, max_length=100, description="The programme's name of the vaccine")
    cvx: str | None = Field(default=None, pattern=r"^\d{1,3}$", description="CDC CVX code, for FHIR exchange")
    dose: int = Field(ge=1, le=10)
    due_age: Age
    overdue_age: Age = Field(description="From this age a dose not given is overdue")
    latest_age: Age | None = Field(default=None, description="After this age the dose is no longer given")
    min_interval_days: int | None = Field(default=None, ge=1, le=3660,
                                          description="Least days after the previous dose of the vaccine")
    regions: list[Annotated[str, Field(pattern=r"^\d{2,10}$")]] = Field(
        default_factory=list, max_length=50, description="Region code prefixes it applies in (empty: everywhere)")

    @model_validator(mode="after")
    def _ages_in_order(self) -> ScheduleRow:
        ages = [self.due_age, self.overdue_age, *([self.latest_age] if self.latest_age else [])]
        if any(_days(a) > MAX_AGE_DAYS for a in ages):
            raise ValueError("an age is beyond childhood")
        if _days(self.overdue_age) <= _days(self.due_age):
            raise ValueError("overdue_age must be after due_age")
        if self.latest_age is not None and _days(self.latest_age) < _days(self.overdue_age):
            raise ValueError("latest_age must not be before overdue_age")
        if self.dose == 1 and self.min_interval_days is not None:
            raise ValueError("dose 1 has no previous dose: leave min_interval_days empty")
        return self

    def applies_in(self, village_code: str | None) -> bool:
        return not self.regions or (village_code is not None
                                    and any(village_code.startswith(r) for r in self.regions))


class ScheduleVersionIn(BaseModel):
    """A schedule version as the admin API takes it: every dose row, checked for consistent numbering."""

    model_config = ConfigDict(extra="forbid")

    version: str = Field(pattern=r"^[a-z0-9][a-z0-9.-]{0,59}$", description="A unique label, e.g. `kemenkes-2027`")
    valid_from: IsoDate = Field(description="The first day the version is in force; after every existing version's")
    source: str | None = Field(default=None, max_length=500, description="The regulation or circular it follows")
    rows: list[ScheduleRow] = Field(min_length=1, max_length=200)

    @field_validator("rows")
    @classmethod
    def _consistent(cls, rows: list[ScheduleRow]) -> list[ScheduleRow]:
        by_vaccine: dict[str, list[ScheduleRow]] = {}
        for row in rows:
            by_vaccine.setdefault(row.vaccine, []).append(row)
        problems = []
        for vaccine, doses in by_vaccine.items():
            numbers = sorted(r.dose for r in doses)
            if numbers != list(range(1, len(numbers) + 1)):
                problems.append(f"{vaccine}: dose numbers must run 1..n without gaps or repeats, not {numbers}")
            if len({(r.name, r.cvx) for r in doses}) > 1:
                problems.append(f"{vaccine}: every dose must carry the same name and cvx")
            ordered = sorted(doses, key=lambda r: r.dose)
            for earlier, later in itertools.pairwise(ordered):
                if _days(later.due_age) < _days(earlier.due_age):
                    problems.append(f"{vaccine}: dose {later.dose} is due before dose {earlier.dose}")
        if problems:
            raise ValueError("; ".join(problems))
        return sorted(rows, key=lambda r: (r.vaccine, r.dose))


@dataclass(frozen=True)
class ScheduleVersion:
    version: str
    valid_from: date
    rows: tuple[ScheduleRow, ...]
    source: str | None = None

    def row(self, vaccine: str, dose: int) -> ScheduleRow | None:
        return next((r for r in self.rows if r.vaccine == vaccine and r.dose == dose), None)


@dataclass(frozen=True)
class Schedule:
    """Every version, oldest first."""

    versions: tuple[ScheduleVersion, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "versions", tuple(sorted(self.versions, key=lambda v: v.valid_from)))

    def in_force(self, on: date) -> ScheduleVersion | None:
        """The version in force on a day: the latest that started on or before it (None before the first)."""
        return next((v for v in reversed(self.versions) if v.valid_from <= on), None)

    def row(self, vaccine: str, dose: int, on: date) -> ScheduleRow | None:
        """The dose's row as of a day: from the version in force then, else from the newest version that has it
        (a dose given before its vaccine joined the national schedule, or after it left, is still that dose)."""
        version = self.in_force(on)
        found = version.row(vaccine, dose) if version else None
        return found or next((r for v in reversed(self.versions) if (r := v.row(vaccine, dose))), None)

    @property
    def vaccines(self) -> dict[str, ScheduleRow]:
        """Every vaccine any version knows, with its newest row (for its name and CVX code)."""
        return {r.vaccine: r for v in self.versions for r in v.rows}


def rows_from_csv(lines: Iterable[str]) -> list[ScheduleVersionIn]:
    """The versions in a schedule file (comment lines start with `#`), validated as the admin API validates."""
    content = [line for line in lines if not line.lstrip().startswith("#")]
    grouped: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for record in csv.DictReader(content):
        grouped.setdefault((record["version"], record["valid_from"]), []).append({
            "vaccine": record["vaccine"], "name": record["name"], "cvx": record["cvx"] or None,
            "dose": int(record["dose"]), "due_age": record["due_age"], "overdue_age": record["overdue_age"],
            "latest_age": record["latest_age"] or None,
            "min_interval_days": int(record["min_interval_days"]) if record["min_interval_days"] else None,
            "regions": record["regions"].split()})
    return [ScheduleVersionIn.model_validate({"version": label, "valid_from": valid_from, "rows": rows,
                                              "source": f"services/household/immunization/{SCHEDULE_FILE.name}"})
            for (label, valid_from), rows in grouped.items()]


def national_versions() -> list[ScheduleVersionIn]:
    """The versions of the checked-in schedule file."""
    with SCHEDULE_FILE.open(encoding="utf-8") as handle:
        return rows_from_csv(handle)


def schedule_of(versions: Sequence[ScheduleVersionIn]) -> Schedule:
    return Schedule(tuple(ScheduleVersion(version=v.version, valid_from=v.valid_from, rows=tuple(v.rows),
                                          source=v.source) for v in versions))


def seed_national_versions(connection: Any) -> int:
    """Insert the file's versions that the database lacks (a synchronous SQLAlchemy connection, as a migration
    has); idempotent. Returns how many were added."""
    import orjson
    import sqlalchemy as sa

    added = 0
    for version in national_versions():
        result = connection.execute(sa.text(
            "INSERT INTO immunization_schedule_versions (version, valid_from, source, rows, created_by, created_at) "
            "VALUES (:version, :valid_from, :source, CAST(:rows AS jsonb), 'schedule.csv', now()) "
            "ON CONFLICT DO NOTHING"),
            {"version": version.version, "valid_from": version.valid_from, "source": version.source,
             "rows": orjson.dumps([r.model_dump(mode="json") for r in version.rows]).decode()})
        added += result.rowcount
    return added
