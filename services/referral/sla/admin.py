"""SLA administration: overrides, escalation delays and holiday calendar versions (admin only; each change audited).

A change applies to deadlines computed after it (a referral reaching an agency from now on); deadlines already
on referrals stay as they are. The referral event catalogue has no SLA aggregate, so changes send no event: the
audit log is their record.
"""

from __future__ import annotations

import uuid
import zlib
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from services.referral.sla.config import ESCALATION_DELAY, Unit
from services.referral.sla.schemas import (
    CalendarBody,
    CalendarPublic,
    DelayBody,
    DelayPublic,
    HolidayEntry,
    OverrideBody,
    OverridePublic,
    from_interval,
    to_interval,
)
from services.referral.tables import EscalationDelay, Holiday, HolidayCalendar, KnownAgency, SlaOverride
from shared.audit import record
from shared.auth import Principal
from shared.categories import Urgency
from shared.concurrency import check_if_match
from shared.conflicts import unique_or_conflict
from shared.errors import NotFound, ValidationFailed

PURPOSE = "SLA administration"


def override_view(row: SlaOverride) -> OverridePublic:
    unit = Unit(row.unit)
    assert row.id is not None
    return OverridePublic(id=row.id, urgency=Urgency(row.urgency), agency_id=row.agency_id, category=row.category,
                          region_prefix=row.region_prefix, respond_within=from_interval(row.respond_within, unit),
                          complete_within=from_interval(row.complete_within, unit), unit=unit, version=row.version,
                          updated_at=row.updated_at)


async def _check_agency(session: AsyncSession, agency_id: uuid.UUID | None) -> None:
    if agency_id is not None and await session.get(KnownAgency, agency_id) is None:
        raise ValidationFailed(f"There is no agency {agency_id} known to this service.",
                               errors=[{"field": "agency_id", "message": "unknown agency"}])


def _apply(row: SlaOverride, body: OverrideBody, now: datetime) -> None:
    row.urgency, row.agency_id, row.category = body.urgency.value, body.agency_id, body.category
    row.region_prefix, row.unit = body.region_prefix, body.unit.value
    row.respond_within = to_interval(body.respond_within, body.unit)
    row.complete_within = to_interval(body.complete_within, body.unit)
    row.updated_at = now


async def _flush_scope(session: AsyncSession, row: SlaOverride) -> None:
    # The unique scope index decides, also between two concurrent requests: a clash is the caller's 409.
    async with unique_or_conflict(
            session, "An override for this urgency, agency, category and region exists already; update it."):
        session.add(row)


async def list_overrides(session: AsyncSession, *, urgency: Urgency | None, agency_id: uuid.UUID | None,
                         category: str | None, after: int | None, limit: int) -> list[SlaOverride]:
    query = select(SlaOverride).order_by(col(SlaOverride.id)).limit(limit + 1)
    if urgency is not None:
        query = query.where(SlaOverride.urgency == urgency.value)
    if agency_id is not None:
        query = query.where(SlaOverride.agency_id == agency_id)
    if category is not None:
        query = query.where(SlaOverride.category == category)
    if after is not None:
        query = query.where(col(SlaOverride.id) > after)
    return list((await session.execute(query)).scalars().all())


async def get_override(session: AsyncSession, override_id: int, *, for_update: bool = False) -> SlaOverride:
    """Load an override (locked when it is about to change); 404 otherwise."""
    row = await session.get(SlaOverride, override_id, with_for_update=for_update)
    if row is None:
        raise NotFound(f"There is no SLA override {override_id}.")
    return row


async def create_override(session: AsyncSession, principal: Principal, body: OverrideBody,
                          now: datetime) -> SlaOverride:
    await _check_agency(session, body.agency_id)
    row = SlaOverride(urgency=body.urgency.value, respond_within=to_interval(1, Unit.HOURS),
                      complete_within=to_interval(1, Unit.HOURS))
    _apply(row, body, now)
    await _flush_scope(session, row)
    await record(session, principal, action="create", resource_type="sla.override", resource_id=str(row.id),
                 purpose=PURPOSE, fields=sorted(body.model_fields_set | {"urgency"}))
    return row


async def update_override(session: AsyncSession, principal: Principal, row: SlaOverride, body: OverrideBody,
                          if_match: str | None, now: datetime) -> SlaOverride:
    """Replaces an override (its row locked by the caller), audited."""
    check_if_match(if_match, row.version)
    await _check_agency(session, body.agency_id)
    before = override_view(row).model_dump(exclude={"id", "version", "updated_at"})
    _apply(row, body, now)
    row.version += 1
    await _flush_scope(session, row)
    after = override_view(row).model_dump(exclude={"id", "version", "updated_at"})
    await record(session, principal, action="update", resource_type="sla.override", resource_id=str(row.id),
                 purpose=PURPOSE, fields=sorted(k for k in after if after[k] != before[k]))
    return row


async def delete_override(session: AsyncSession, principal: Principal, row: SlaOverride,
                          if_match: str | None) -> None:
    """Deletes an override (its row locked by the caller), audited."""
    check_if_match(if_match, row.version)
    await session.delete(row)
    await record(session, principal, action="delete", resource_type="sla.override", resource_id=str(row.id),
                 purpose=PURPOSE)


def _delay_view(urgency: Urgency, row: EscalationDelay | None) -> DelayPublic:
    if row is None:
        return DelayPublic(urgency=urgency, delay=ESCALATION_DELAY[urgency].days, unit=Unit.DAYS, configured=False,
                           version=0)
    unit = Unit(row.unit)
    return DelayPublic(urgency=urgency, delay=from_interval(row.delay, unit), unit=unit, configured=True,
                       version=row.version)


async def escalation_delays(session: AsyncSession) -> list[DelayPublic]:
    rows = {r.urgency: r for r in (await session.execute(select(EscalationDelay))).scalars()}
    return [_delay_view(u, rows.get(u.value)) for u in Urgency]


async def set_escalation_delay(session: AsyncSession, principal: Principal, urgency: Urgency, body: DelayBody,
                               if_match: str | None, now: datetime) -> DelayPublic:
    """Set the delay of one urgency; the default counts as version 0, so `If-Match: "0"` guards the first set."""
    row = await session.get(EscalationDelay, urgency.value, with_for_update=True)
    check_if_match(if_match, row.version if row else 0)
    interval, unit = to_interval(body.delay, body.unit), body.unit.value
    if row is None:
        row = EscalationDelay(urgency=urgency.value, delay=interval, unit=unit, updated_at=now)
        async with unique_or_conflict(session, "The escalation delay was set concurrently; read it and retry."):
            session.add(row)
    else:
        row.delay, row.unit, row.version, row.updated_at = interval, unit, row.version + 1, now
    await record(session, principal, action="update", resource_type="sla.escalation-delay",
                 resource_id=urgency.value, purpose=PURPOSE, fields=["delay", "unit"])
    return _delay_view(urgency, row)


async def _calendar_view(session: AsyncSession, calendar: HolidayCalendar, latest: int) -> CalendarPublic:
    days = (await session.execute(select(Holiday).where(Holiday.year == calendar.year,
                                                        Holiday.version == calendar.version)
                                  .order_by(col(Holiday.date)))).scalars()
    return CalendarPublic(year=calendar.year, version=calendar.version, source=calendar.source,
                          created_by=calendar.created_by, created_at=calendar.created_at,
                          in_force=calendar.version == latest,
                          holidays=[HolidayEntry(date=d.date, kind=d.kind, name=d.name) for d in days])


async def _latest_version(session: AsyncSession, year: int) -> int:
    return int(await session.scalar(sa.select(sa.func.coalesce(sa.func.max(col(HolidayCalendar.version)), 0))
                                    .where(col(HolidayCalendar.year) == year)) or 0)


async def calendars(session: AsyncSession) -> list[CalendarPublic]:
    rows = (await session.execute(select(HolidayCalendar).order_by(col(HolidayCalendar.year),
                                                                   col(HolidayCalendar.version)))).scalars().all()
    latest = {r.year: r.version for r in rows}
    return [await _calendar_view(session, r, latest[r.year]) for r in rows]


async def calendar(session: AsyncSession, year: int, version: int | None) -> CalendarPublic:
    latest = await _latest_version(session, year)
    row = await session.get(HolidayCalendar, (year, version or latest))
    if row is None:
        raise NotFound(f"There is no holiday calendar {year}" + (f" version {version}." if version else "."))
    return await _calendar_view(session, row, latest)


async def add_calendar(session: AsyncSession, principal: Principal, body: CalendarBody,
                       now: datetime) -> CalendarPublic:
    """A new version of a year's calendar (the next number), in force for deadlines computed from now on."""
    # One new version of a year at a time: two concurrent adds would both take the same number.
    lock = zlib.crc32(f"holiday-calendar-{body.year}".encode())
    await session.execute(sa.select(sa.func.pg_advisory_xact_lock(lock)))
    version = await _latest_version(session, body.year) + 1
    row = HolidayCalendar(year=body.year, version=version, source=body.source, created_by=principal.sub,
                          created_at=now)
    session.add(row)
    await session.flush()
    session.add_all(Holiday(year=body.year, version=version, date=h.date, kind=h.kind, name=h.name)
                    for h in body.holidays)
    await session.flush()
    await record(session, principal, action="create", resource_type="sla.holiday-calendar",
                 resource_id=f"{body.year}/{version}", purpose=PURPOSE, fields=["holidays", "source"])
    return await _calendar_view(session, row, version)
