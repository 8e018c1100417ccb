"""Opening days (hari buka): a posyandu's monthly rule with its extra, moved and cancelled days; each change an event
carrying the whole schedule and the dates it gives for the coming months."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, delete, select

from services.registry.posyandu.access import require_carer
from services.registry.schedule.schemas import (
    MAX_RANGE_DAYS,
    CancelledDay,
    ExtraDay,
    MonthlyRule,
    MovedDay,
    OpeningDayPublic,
    OpeningDays,
    SchedulePublic,
    ScheduleWrite,
)
from services.registry.tables import Posyandu, PosyanduSchedule, ScheduleException
from shared.auth import Principal
from shared.concurrency import check_if_match
from shared.errors import Conflict, ValidationFailed
from shared.events import registry as ev
from shared.opening_days import DayKind, Ordinal, Weekday
from shared.opening_days import MonthlyRule as Rule
from shared.outbox import publish

#: The schedule event lists the opening days from the first of the current month this many months on.
EVENT_HORIZON_MONTHS = 12


async def _load(session: AsyncSession, posyandu_id: uuid.UUID, *, for_update: bool = False
                ) -> tuple[PosyanduSchedule | None, list[ScheduleException]]:
    schedule = await session.get(PosyanduSchedule, posyandu_id, with_for_update=for_update)
    if schedule is None:
        return None, []
    rows = await session.execute(select(ScheduleException).where(ScheduleException.posyandu_id == posyandu_id)
                                 .order_by(col(ScheduleException.on_date)))
    return schedule, list(rows.scalars().all())


def _rules(schedule: PosyanduSchedule | None, exceptions: list[ScheduleException]) -> ev.ScheduleRules:
    """The schedule as its event carries it (without reasons), which also computes its days (`to_schedule`)."""
    rule = None
    if schedule is not None and schedule.rule_ordinal and schedule.rule_weekday:
        rule = ev.MonthlyRuleData(ordinal=Ordinal(schedule.rule_ordinal), weekday=Weekday(schedule.rule_weekday))
    return ev.ScheduleRules(
        rule=rule, extra_days=sorted(e.on_date for e in exceptions if e.kind == "extra"),
        moved_days=sorted((ev.MovedDayData(from_date=e.on_date, to_date=e.to_date)
                           for e in exceptions if e.kind == "moved" and e.to_date), key=lambda m: m.from_date),
        cancelled_days=sorted(e.on_date for e in exceptions if e.kind == "cancelled"))


def public(posyandu_id: uuid.UUID, schedule: PosyanduSchedule | None,
           exceptions: list[ScheduleException]) -> SchedulePublic:
    rule = None
    if schedule is not None and schedule.rule_ordinal and schedule.rule_weekday:
        rule = MonthlyRule(ordinal=Ordinal(schedule.rule_ordinal), weekday=Weekday(schedule.rule_weekday))
    return SchedulePublic(
        posyandu_id=posyandu_id, rule=rule,
        extra_days=[ExtraDay(date=e.on_date, reason=e.reason) for e in exceptions if e.kind == "extra"],
        moved_days=[MovedDay(from_date=e.on_date, to_date=e.to_date, reason=e.reason)
                    for e in exceptions if e.kind == "moved" and e.to_date],
        cancelled_days=[CancelledDay(date=e.on_date, reason=e.reason) for e in exceptions if e.kind == "cancelled"],
        version=schedule.version if schedule else 0, updated_at=schedule.updated_at if schedule else None)


def _check(payload: ScheduleWrite) -> None:
    """The exceptions must fit the rule: a moved or cancelled day is a rule day, an extra or moved-to day is not,
    and no date is named twice (one reason per date)."""
    errors: list[dict[str, Any]] = []
    rule = Rule(payload.rule.ordinal, payload.rule.weekday) if payload.rule else None

    def rule_day(day: date) -> bool:
        return rule is not None and rule.day_in(day.year, day.month) == day

    named: dict[date, str] = {}

    def name(day: date, where: str) -> None:
        if day in named:
            errors.append({"field": where, "message": f"{day} is named already at {named[day]}"})
        else:
            named[day] = where

    for i, extra in enumerate(payload.extra_days):
        where = f"extra_days.{i}.date"
        if rule_day(extra.date):
            errors.append({"field": where, "message": f"{extra.date} is a day of the monthly rule already"})
        name(extra.date, where)
    for i, moved in enumerate(payload.moved_days):
        if not rule_day(moved.from_date):
            errors.append({"field": f"moved_days.{i}.from_date",
                           "message": f"{moved.from_date} is not a day of the monthly rule"})
        if rule_day(moved.to_date):
            errors.append({"field": f"moved_days.{i}.to_date",
                           "message": f"{moved.to_date} is a day of the monthly rule already"})
        name(moved.from_date, f"moved_days.{i}.from_date")
        name(moved.to_date, f"moved_days.{i}.to_date")
    for i, cancelled in enumerate(payload.cancelled_days):
        where = f"cancelled_days.{i}.date"
        if not rule_day(cancelled.date):
            errors.append({"field": where, "message": f"{cancelled.date} is not a day of the monthly rule"})
        name(cancelled.date, where)
    if errors:
        raise ValidationFailed("The schedule's exceptions do not fit its monthly rule.", errors=errors)


def _same(current: SchedulePublic, payload: ScheduleWrite) -> bool:
    def key(s: SchedulePublic | ScheduleWrite) -> tuple[Any, ...]:
        return (s.rule, sorted((e.date, e.reason) for e in s.extra_days),
                sorted((m.from_date, m.to_date, m.reason) for m in s.moved_days),
                sorted((c.date, c.reason) for c in s.cancelled_days))
    return key(current) == key(payload)


def _horizon(today: date) -> tuple[date, date]:
    start = today.replace(day=1)
    year, month = divmod(start.month - 1 + EVENT_HORIZON_MONTHS, 12)
    return start, date(start.year + year, month + 1, 1) - timedelta(days=1)


def event_data(posyandu: Posyandu, schedule: PosyanduSchedule, exceptions: list[ScheduleException],
               today: date) -> ev.ScheduleData:
    rules = _rules(schedule, exceptions)
    start, end = _horizon(today)
    return ev.ScheduleData(**dict(rules), posyandu_id=posyandu.id, village_code=posyandu.village_code,
                           opening_days=[d.date for d in rules.to_schedule().opening_days(start, end)],
                           opening_days_from=start, opening_days_to=end, version=schedule.version)


async def get(*, session: AsyncSession, posyandu: Posyandu) -> SchedulePublic:
    """Gets a posyandu's schedule (version 0 and no rule before the first one is written); public notice."""
    return public(posyandu.id, *await _load(session, posyandu.id))


async def write(*, session: AsyncSession, principal: Principal, posyandu: Posyandu, payload: ScheduleWrite,
                if_match: str | None, now: datetime) -> SchedulePublic:
    """Replaces a posyandu's schedule (optimistic concurrency on its version) and announces the result with its
    opening days from this month (by the clock) on; the posyandu must be locked (the path dependency on a write)."""
    await require_carer(session, principal, posyandu,
                        "Only the posyandu's kader, its pembina and admins may change its opening days.")
    if posyandu.status != "active":
        raise Conflict("An inactive posyandu has no opening days.")
    schedule, current = await _load(session, posyandu.id, for_update=True)
    check_if_match(if_match, schedule.version if schedule else 0)
    _check(payload)
    unchanged = public(posyandu.id, schedule, current)
    if schedule is not None and _same(unchanged, payload):
        return unchanged  # a repeated PUT changes nothing and announces nothing
    if schedule is None:
        schedule = PosyanduSchedule(posyandu_id=posyandu.id, version=0, updated_by=principal.sub)
        session.add(schedule)
    schedule.rule_ordinal = payload.rule.ordinal.value if payload.rule else None
    schedule.rule_weekday = payload.rule.weekday.value if payload.rule else None
    schedule.version += 1
    schedule.updated_by = principal.sub
    schedule.updated_at = now
    await session.flush()
    await session.execute(delete(ScheduleException).where(col(ScheduleException.posyandu_id) == posyandu.id))
    exceptions = ([ScheduleException(posyandu_id=posyandu.id, kind="extra", on_date=e.date, reason=e.reason)
                   for e in payload.extra_days]
                  + [ScheduleException(posyandu_id=posyandu.id, kind="moved", on_date=m.from_date, to_date=m.to_date,
                                       reason=m.reason) for m in payload.moved_days]
                  + [ScheduleException(posyandu_id=posyandu.id, kind="cancelled", on_date=c.date, reason=c.reason)
                     for c in payload.cancelled_days])
    session.add_all(exceptions)
    await session.flush()
    exceptions.sort(key=lambda e: e.on_date)
    await publish(session, ev.SCHEDULE_CHANGED, event_data(posyandu, schedule, exceptions, now.date()),
                  subject=str(posyandu.id), regioncode=posyandu.village_code)
    return public(posyandu.id, schedule, exceptions)


async def opening_days(*, session: AsyncSession, posyandu: Posyandu, start: date, end: date | None) -> OpeningDays:
    """The concrete opening days of a posyandu from start to end (default: 3 months on, at most MAX_RANGE_DAYS),
    computed from its rule and exceptions."""
    end = end or start + timedelta(days=91)
    if end < start or (end - start).days > MAX_RANGE_DAYS:
        raise ValidationFailed(f"`to` must be on or after `from` and at most {MAX_RANGE_DAYS} days later.",
                               errors=[{"field": "to", "message": "outside the allowed range"}])
    schedule, exceptions = await _load(session, posyandu.id)
    reasons = {(e.to_date if e.kind == "moved" else e.on_date): e.reason for e in exceptions if e.kind != "cancelled"}
    return OpeningDays(posyandu_id=posyandu.id, start=start, end=end, items=[
        OpeningDayPublic(date=d.date, kind=d.kind, moved_from=d.moved_from,
                         reason=reasons.get(d.date) if d.kind is not DayKind.RULE else None)
        for d in _rules(schedule, exceptions).to_schedule().opening_days(start, end)])
