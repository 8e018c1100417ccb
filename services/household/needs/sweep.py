"""The daily need sweep: the rules that depend on age or elapsed time, re-evaluated for the members they may concern.

An edit re-evaluates its household's needs on the day of the edit; but a child turns two, a woman's pregnancy
moves into the month when another antenatal visit is due, a man turns 60, without anyone editing anything. Once a
day the sweep finds the members whose situation may have changed since the last sweep and refreshes their
households through the edit's own path (:func:`~services.household.needs.service.refresh_needs`), so a need that
starts or stops holding emits exactly the events an edit would, and an unchanged one emits nothing. A child's
computed immunisation status is published again where it changed (a kesehatan profile version, as after a dose).

Which members, as a set query over the birth-date index rather than the whole table:

* those whose age in whole years or months reached a rule's threshold on one of the days swept (both ends of
  every age range: entering and leaving it), from :func:`rule_thresholds`;
* pregnant members whose pregnancy month changed on one of those days (the antenatal visits due follow it);
* children whose computed immunisation status may have turned: they reached a dose's overdue age or passed its
  latest age (:func:`immunization_birth_ranges`), or a dose due after an earlier one fell overdue
  (:func:`later_dose_windows`, by the earlier dose's day); every under-five when a schedule version came into
  force. These are a few days wider than exact (a calendar month's length varies): a household refreshed for
  nothing emits nothing.

Once per day across replicas: a control transaction takes a transaction-scoped advisory lock, reads the last swept
day from `need_sweeps`, refreshes the households in batches (each its own transaction, so edits wait on a batch at
most), and writes the day's row before it commits and releases the lock. A second replica finds the lock taken or
the day already recorded. A crash leaves no row: the next run sweeps the same days again, and the households
already refreshed emit nothing. Days missed while nothing ran are swept together on the next run (evaluated on
today, which is what their needs must reflect). The very first sweep covers its own day only.
"""

from __future__ import annotations

import asyncio
import calendar
import logging
import uuid
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col, select

from services.household.immunization.repository import load_schedule
from services.household.immunization.schedule import Schedule
from services.household.immunization.service import sync_profile_status
from services.household.immunization.tables import Dose
from services.household.needs.config import DEFAULT_CONFIG, NeedRulesConfig
from services.household.needs.service import refresh_needs
from services.household.settings import HouseholdSettings
from services.household.tables import Household, Member, NeedSweep
from shared.clock import Clock, today_by
from shared.settings import ServiceSettings

log = logging.getLogger(__name__)

_SWEEP_LOCK = zlib.crc32(b"household-need-sweep")
#: The month of pregnancy stops at 10 (services.household.needs.rules.pregnancy_month): it changes 9 times.
_PREGNANCY_MONTH_CHANGES = range(1, 10)

#: A range of dates (after, up_to]: `after` < value <= `up_to`.
DateRange = tuple[date, date]


@dataclass(frozen=True)
class Thresholds:
    """The ages (in whole years or whole months) at which some rule starts or stops applying."""

    years: frozenset[int]
    months: frozenset[int]


def rule_thresholds(config: NeedRulesConfig = DEFAULT_CONFIG) -> Thresholds:
    """Every age at which a rule of services.household.needs.rules may change its outcome (an inclusive range
    `min..max` changes at `min` and at `max + 1`). A new rule with an age in it adds its ages here; the sweep's
    tests check this list against the rules themselves."""
    c = config
    return Thresholds(
        years=frozenset({
            0,
            c.paud_min_age, c.paud_max_age + 1,
            c.ats_min_age, c.ats_max_age + 1,
            c.kesetaraan_min_age, c.kesetaraan_max_age + 1, c.kesetaraan_unrecorded_enrolment_min_age,
            c.special_needs_min_age, c.special_needs_max_age + 1,
            c.hypertension_min_age,
            c.elderly_min_age,
            c.pregnancy_min_safe_age, c.pregnancy_max_safe_age + 1,
        }),
        months=frozenset({0, c.growth_max_age_months + 1, c.immunization_max_age_months + 1}),
    )


def latest_birth_date_for_years(years: int, on: date) -> date:
    """The latest birth date of someone at least `years` whole years old on `on` (29 February: see age_in_years)."""
    year = on.year - years
    day = min(on.day, calendar.monthrange(year, on.month)[1])
    return date(year, on.month, day)


def latest_birth_date_for_months(months: int, on: date) -> date:
    """The latest birth date of someone at least `months` whole months old on `on` (see age_in_months)."""
    year, month0 = divmod(on.year * 12 + on.month - 1 - months, 12)
    day = min(on.day, calendar.monthrange(year, month0 + 1)[1])
    return date(year, month0 + 1, day)


def _merged(ranges: Iterable[DateRange]) -> list[DateRange]:
    merged: list[DateRange] = []
    for after, up_to in sorted(r for r in ranges if r[0] < r[1]):
        if merged and after <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], up_to))
        else:
            merged.append((after, up_to))
    return merged


def birth_date_ranges(thresholds: Thresholds, since: date, today: date) -> list[DateRange]:
    """The birth dates of everyone who reached a threshold age on a day of [since, today]: age is monotone in the
    birth date, so reaching N between the day before `since` and `today` is a birth date in
    (latest birth for N on the day before, latest birth for N today]."""
    before = since - timedelta(days=1)
    return _merged(
        [(latest_birth_date_for_years(n, before), latest_birth_date_for_years(n, today)) for n in thresholds.years]
        + [(latest_birth_date_for_months(n, before), latest_birth_date_for_months(n, today))
           for n in thresholds.months])


def delivery_date_ranges(since: date, today: date, config: NeedRulesConfig = DEFAULT_CONFIG) -> list[DateRange]:
    """The expected delivery dates of pregnancies whose month changed on a day of [since, today]: month k ends on
    conception + k * 30 days, conception being the expected delivery date - 280 days."""
    before = since - timedelta(days=1)
    shifts = [timedelta(days=config.pregnancy_length_days - k * config.pregnancy_month_days)
              for k in _PREGNANCY_MONTH_CHANGES]
    return _merged((before + shift, today + shift) for shift in shifts)


#: How far a schedule age in calendar months can land from the same age taken as whole months of age (a month
#: is 28-31 days), plus the day after a latest age (when a dose becomes missed).
_SCHEDULE_SLACK = timedelta(days=4)


def _age_parts(age: str) -> tuple[int, str]:
    return int(age[:-1]), age[-1]


def _born_before(day: date, age: str) -> date:
    """About the birth date of a child who reaches `age` on `day` (exactly, for ages in days)."""
    n, unit = _age_parts(age)
    return day - timedelta(days=n) if unit == "d" else latest_birth_date_for_months(n, day)


def immunization_birth_ranges(schedule: Schedule, since: date, today: date) -> list[DateRange]:
    """Birth dates of children who reached a dose's overdue age or passed its latest age on a day of
    [since, today], in any version of the schedule (widened by :data:`_SCHEDULE_SLACK`)."""
    ages = {age for version in schedule.versions for row in version.rows
            for age in (row.overdue_age, row.latest_age) if age is not None}
    before = since - timedelta(days=1)
    return _merged((_born_before(before, age) - _SCHEDULE_SLACK, _born_before(today, age) + _SCHEDULE_SLACK)
                   for age in ages)


@dataclass(frozen=True)
class LaterDoseWindow:
    """A dose due `min_interval_days` after the previous one falls overdue a window later: children who had the
    previous dose (`vaccine`, `previous_dose`) on a day of (after, up_to] may have turned on a day swept."""

    vaccine: str
    previous_dose: int
    after: date
    up_to: date


def later_dose_windows(schedule: Schedule, since: date, today: date) -> list[LaterDoseWindow]:
    """For each dose of any version due after an interval: the days of the previous dose that put its overdue day
    (previous + interval + the dose's window between due and overdue age) on a day of [since, today]."""
    windows: set[LaterDoseWindow] = set()
    for version in schedule.versions:
        for row in version.rows:
            if row.min_interval_days is None:
                continue
            (due, due_unit), (overdue, overdue_unit) = _age_parts(row.due_age), _age_parts(row.overdue_age)
            window = timedelta(days=(overdue - due) if due_unit == overdue_unit == "d"
                               else round(_days_of(row.overdue_age) - _days_of(row.due_age)))
            shift = timedelta(days=row.min_interval_days) + window
            windows.add(LaterDoseWindow(row.vaccine, row.dose - 1,
                                        since - timedelta(days=1) - shift - _SCHEDULE_SLACK,
                                        today - shift + _SCHEDULE_SLACK))
    return sorted(windows, key=lambda w: (w.vaccine, w.previous_dose, w.after))


def _days_of(age: str) -> float:
    n, unit = _age_parts(age)
    return n if unit == "d" else n * 30.4375


def _within(column: Any, ranges: list[DateRange]) -> sa.ColumnElement[bool]:
    return sa.or_(sa.false(), *[sa.and_(column > after, column <= up_to) for after, up_to in ranges])


def _immunization_turned(schedule: Schedule, since: date, today: date,
                         config: NeedRulesConfig) -> sa.ColumnElement[bool]:
    """SQL: the member's immunisation status may have turned on a day of [since, today]."""
    if any(since <= version.valid_from <= today for version in schedule.versions):
        # A new version is in force: every child the status is computed for.
        return col(Member.birth_date) > latest_birth_date_for_months(config.immunization_max_age_months + 1, today)
    later = [sa.and_(col(Dose.vaccine) == w.vaccine, col(Dose.dose_number) == w.previous_dose,
                     col(Dose.given_on) > w.after, col(Dose.given_on) <= w.up_to)
             for w in later_dose_windows(schedule, since, today)]
    had_previous = (sa.exists().where(col(Dose.member_id) == col(Member.id), col(Dose.status) == "active",
                                      sa.or_(sa.false(), *later)))
    return sa.or_(_within(col(Member.birth_date), immunization_birth_ranges(schedule, since, today)), had_previous)


async def concerned_households(session: AsyncSession, *, since: date, today: date,
                               config: NeedRulesConfig = DEFAULT_CONFIG) -> list[uuid.UUID]:
    """The active households with an active member whom the days [since, today] may have changed, by id."""
    births = birth_date_ranges(rule_thresholds(config), since, today)
    deliveries = delivery_date_ranges(since, today, config)
    schedule = await load_schedule(session)
    query = (select(Member.household_id).distinct()
             .join(Household, col(Household.id) == col(Member.household_id))
             .where(Member.status == "active", Household.status == "active",
                    sa.or_(_within(col(Member.birth_date), births),
                           sa.and_(col(Member.pregnant).is_(True),
                                   _within(col(Member.expected_delivery_date), deliveries)),
                           _immunization_turned(schedule, since, today, config)))
             .order_by(col(Member.household_id)))
    return list((await session.execute(query)).scalars().all())


@dataclass
class SweepResult:
    """What one sweep did: the days it covered, the households it refreshed, the needs that started or stopped."""

    swept_on: date
    since: date
    households: list[uuid.UUID] = field(default_factory=list)
    detected: int = 0
    resolved: int = 0


async def sweep_needs(sessionmaker: async_sessionmaker[AsyncSession], *, since: date, today: date,
                      batch_size: int, config: NeedRulesConfig = DEFAULT_CONFIG) -> SweepResult:
    """Refresh, on `today`, the needs of every household [since, today] may have changed; batch by batch."""
    result = SweepResult(swept_on=today, since=since)
    async with sessionmaker() as session:
        concerned = await concerned_households(session, since=since, today=today, config=config)
    for start in range(0, len(concerned), batch_size):
        async with sessionmaker() as session, session.begin():
            for household_id in concerned[start:start + batch_size]:
                # Locked as an edit locks it, so the two see each other's needs.
                household = await session.get(Household, household_id, with_for_update=True)
                if household is None or household.status != "active":
                    continue
                # The published immunisation statuses follow the day too (reporting's complete-for-age reads them).
                await sync_profile_status(session=session, household=household, today=today)
                changes = await refresh_needs(session, household, today=today)
                result.households.append(household_id)
                result.detected += len(changes.detected)
                result.resolved += len(changes.resolved)
    return result


async def run_daily_sweep(sessionmaker: async_sessionmaker[AsyncSession], *, clock: Clock, batch_size: int,
                          since: date | None = None) -> SweepResult | None:
    """Today's sweep, unless it ran already or another replica is running it (then None).

    `since`: sweep from that day even if today's sweep ran (an operator's catch-up; harmless, see the module)."""
    today = today_by(clock)
    async with sessionmaker() as control, control.begin():
        if not await control.scalar(sa.select(sa.func.pg_try_advisory_xact_lock(_SWEEP_LOCK))):
            return None
        last = await control.scalar(sa.select(sa.func.max(col(NeedSweep.swept_on))))
        if since is None:
            if last is not None and last >= today:
                return None
            since = last + timedelta(days=1) if last is not None else today
        started_at = clock()
        result = await sweep_needs(sessionmaker, since=since, today=today, batch_size=batch_size)
        row = {"swept_on": today, "since": since, "households": len(result.households),
               "detected": result.detected, "resolved": result.resolved, "started_at": started_at,
               "finished_at": clock()}
        await control.execute(insert(NeedSweep).values(row).on_conflict_do_update(
            index_elements=[col(NeedSweep.swept_on)], set_={k: v for k, v in row.items() if k != "swept_on"}))
    return result


async def need_sweep_loop(settings: ServiceSettings, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """The background job: at start-up (catching up missed days) and every interval, today's sweep if it is due;
    errors are logged and retried at the next interval."""
    assert isinstance(settings, HouseholdSettings)
    if not settings.need_sweep_enabled:
        return
    while True:
        try:
            result = await run_daily_sweep(sessionmaker, clock=settings.clock,
                                           batch_size=settings.need_sweep_batch_size)
            if result is not None:
                log.info("need sweep", extra={"swept_on": result.swept_on.isoformat(),
                                              "since": result.since.isoformat(),
                                              "households": len(result.households), "detected": result.detected,
                                              "resolved": result.resolved})
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("need sweep failed; retried at the next interval")
        await asyncio.sleep(settings.need_sweep_interval_seconds)
