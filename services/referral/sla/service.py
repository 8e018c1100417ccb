"""SLA clocks: deadlines when a referral reaches an agency, and the sweep that marks overdue and escalates.

Deadlines are stored on the referral, so they survive restarts. The sweep claims each referral with
`UPDATE ... WHERE overdue_at IS NULL RETURNING` (and likewise `escalated_at`), so an event is sent once
whatever runs it and however often; the background loop also takes a transaction-scoped advisory lock so two
replicas do not both do the work.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from prometheus_client import Gauge
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col, select

from services.referral.referrals.events import emit
from services.referral.referrals.history import record_escalation
from services.referral.referrals.lifecycle import OPEN, Status
from services.referral.routing.service import province_agency
from services.referral.settings import ReferralSettings
from services.referral.sla.calendar import working_days_after
from services.referral.sla.config import DEFAULT_SLA, ESCALATION_DELAY, Sla, Unit
from services.referral.tables import EscalationDelay, Referral, SlaOverride
from shared.categories import Urgency
from shared.events import referral as ev
from shared.events.topics import SpmField
from shared.settings import ServiceSettings

log = logging.getLogger(__name__)

_SWEEP_LOCK = zlib.crc32(b"referral-sla-sweep")
#: The overdue referrals still open, per field: the alert `ReferralsOverdue` (deploy/k8s/base/monitoring) reads it.
REFERRALS_OVERDUE = Gauge("referrals_overdue", "Open referrals past an SLA deadline (marked overdue by the sweep), "
                          "by SPM field", ["spm_field"])
#: States whose clocks run: routed, submitted and not closed.
_CLOCKED = [s.value for s in OPEN - {Status.DRAFT}]


async def sla_for(session: AsyncSession, referral: Referral) -> Sla:
    """The deadlines that apply to the referral: the most specific override, else the defaults in code.

    Precedence (most specific first): a row for the referral's agency before one for any agency; among those, a
    row for its category before one for any category; then the longest region prefix holding its village before
    a shorter one, before a row for every region.
    """
    query = (select(SlaOverride)
             .where(SlaOverride.urgency == referral.urgency,
                    sa.or_(col(SlaOverride.agency_id).is_(None), col(SlaOverride.agency_id) == referral.agency_id),
                    sa.or_(col(SlaOverride.category).is_(None), col(SlaOverride.category) == referral.category),
                    sa.or_(col(SlaOverride.region_prefix).is_(None),
                           sa.literal(referral.village_code).startswith(col(SlaOverride.region_prefix))))
             .order_by(col(SlaOverride.agency_id).is_(None), col(SlaOverride.category).is_(None),
                       sa.func.length(sa.func.coalesce(col(SlaOverride.region_prefix), "")).desc())
             .limit(1))
    override = (await session.execute(query)).scalars().first()
    if override is not None:
        return Sla(override.respond_within, override.complete_within, Unit(override.unit))
    return DEFAULT_SLA[Urgency(referral.urgency)]


async def escalation_delay(session: AsyncSession, urgency: Urgency) -> tuple[timedelta, Unit]:
    """The delay an admin set for the urgency, else the default (calendar days)."""
    row = await session.get(EscalationDelay, urgency.value)
    if row is None:
        return ESCALATION_DELAY[urgency], Unit.DAYS
    return row.delay, Unit(row.unit)


async def _after(session: AsyncSession, start: datetime, duration: timedelta, unit: Unit,
                 village_code: str) -> datetime:
    if unit is Unit.WORKING_DAYS:
        return await working_days_after(session, start, duration.days, village_code)
    return start + duration


async def start_clocks(session: AsyncSession, referral: Referral, now: datetime) -> None:
    """Set the deadlines from now (the referral just reached its agency); earlier overdue marks no longer apply.

    The deadlines are computed once, here: a later change of overrides, delays or calendars leaves them be."""
    sla = await sla_for(session, referral)
    village = referral.village_code
    referral.respond_by = await _after(session, now, sla.respond_within, sla.unit, village)
    referral.complete_by = await _after(session, now, sla.complete_within, sla.unit, village)
    delay, delay_unit = await escalation_delay(session, Urgency(referral.urgency))
    referral.escalate_at = await _after(session, referral.complete_by, delay, delay_unit, village)
    referral.responded_at = None
    referral.overdue_at = referral.escalated_at = referral.escalated_to_agency_id = None


@dataclass
class SweepResult:
    overdue: list[Referral] = field(default_factory=list)
    escalated: list[Referral] = field(default_factory=list)


async def run_sla_sweep(session: AsyncSession, now: datetime) -> SweepResult:
    """Mark referrals past a deadline overdue, and escalate those open past the escalation time; each once."""
    result = SweepResult()
    past_deadline = sa.or_(sa.and_(col(Referral.responded_at).is_(None), col(Referral.respond_by) < now),
                           col(Referral.complete_by) < now)
    overdue_ids = (await session.execute(
        sa.update(Referral).where(col(Referral.status).in_(_CLOCKED), col(Referral.agency_id).is_not(None),
                                  col(Referral.overdue_at).is_(None), past_deadline)
        .values(overdue_at=now, version=Referral.version + 1, updated_at=now)
        .returning(col(Referral.id)))).scalars().all()
    for referral_id in sorted(overdue_ids):
        referral = await _fresh(session, referral_id)
        await emit(session, ev.REFERRAL_OVERDUE, referral, action="sweep")
        result.overdue.append(referral)
    escalated_ids = (await session.execute(
        sa.update(Referral).where(col(Referral.status).in_(_CLOCKED), col(Referral.agency_id).is_not(None),
                                  col(Referral.escalated_at).is_(None), col(Referral.escalate_at) < now)
        .values(escalated_at=now, version=Referral.version + 1, updated_at=now)
        .returning(col(Referral.id)))).scalars().all()
    for referral_id in sorted(escalated_ids):
        referral = await _fresh(session, referral_id)
        province = await province_agency(session, spm_field=referral.spm_field, village_code=referral.village_code)
        referral.escalated_to_agency_id = province.id if province is not None else None
        if referral.overdue_at is None:
            referral.overdue_at = now
        record_escalation(session, referral, now)
        await session.flush()
        await emit(session, ev.REFERRAL_ESCALATED, referral, action="sweep")
        result.escalated.append(referral)
    return result


async def _fresh(session: AsyncSession, referral_id: object) -> Referral:
    # The bulk UPDATE bypassed the identity map: reload what it changed.
    referral = await session.get(Referral, referral_id, populate_existing=True)
    assert referral is not None
    return referral


async def refresh_overdue_gauge(session: AsyncSession) -> dict[str, int]:
    """Sets `referrals_overdue` per field from the open referrals the sweep marked overdue (zero for a field with
    none), and returns the counts. Every replica does it, so any replica's gauge is current for the alert."""
    counts: dict[str, int] = {field: n for field, n in await session.execute(
        sa.select(col(Referral.spm_field), sa.func.count())
        .where(col(Referral.status).in_(_CLOCKED), col(Referral.overdue_at).is_not(None))
        .group_by(col(Referral.spm_field)))}
    for spm_field in SpmField:
        REFERRALS_OVERDUE.labels(spm_field.value).set(counts.get(spm_field.value, 0))
    return counts


async def sla_loop(settings: ServiceSettings, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """The background job: sweep every interval; one replica at a time (advisory lock), errors logged and retried.
    Each replica then recounts the overdue referrals for the gauge."""
    assert isinstance(settings, ReferralSettings)
    while True:
        try:
            async with sessionmaker() as session, session.begin():
                locked = await session.scalar(sa.select(sa.func.pg_try_advisory_xact_lock(_SWEEP_LOCK)))
                if locked:
                    result = await run_sla_sweep(session, settings.clock())
                    if result.overdue or result.escalated:
                        log.info("sla sweep", extra={"overdue": len(result.overdue),
                                                     "escalated": len(result.escalated)})
                await refresh_overdue_gauge(session)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("sla sweep failed; retrying", extra={"error": repr(exc)})
        with contextlib.suppress(TimeoutError):
            await asyncio.sleep(settings.sla_sweep_interval_seconds)
