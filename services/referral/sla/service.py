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
from typing import Any

import sqlalchemy as sa
from prometheus_client import Gauge
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.sql.selectable import LateralFromClause
from sqlmodel import col, select

from services.referral.referrals.events import emit
from services.referral.referrals.history import record_escalation
from services.referral.referrals.lifecycle import OPEN, Status
from services.referral.routing.service import (
    RESPONSIBLE_AGENCY_ID,
    province_agency,
    responsible_agency_id_in,
    route_parameters,
)
from services.referral.settings import ReferralSettings
from services.referral.sla.calendar import add_working_days, holidays_in_force, local_zone
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
                          "by SPM field", ["spm_field"], multiprocess_mode="liveall")
#: States whose clocks run: routed, submitted and not closed.
_CLOCKED = [s.value for s in OPEN - {Status.DRAFT}]


def _override(agency_id: Any, village_code: Any = None) -> LateralFromClause:
    """The SLA override that applies to the referral held by `agency_id` (a column or a bound parameter), at most one
    row; binds the referral's `urgency`, `category` and `village_code` (`_terms_parameters`; the village unless
    given as an expression).

    Precedence (most specific first): a row for the referral's agency before one for any agency; among those, a
    row for its category before one for any category; then the longest region prefix holding its village before
    a shorter one, before a row for every region.
    """
    return (select(col(SlaOverride.respond_within), col(SlaOverride.complete_within), col(SlaOverride.unit))
            .where(SlaOverride.urgency == sa.bindparam("urgency"),
                   sa.or_(col(SlaOverride.agency_id).is_(None), col(SlaOverride.agency_id) == agency_id),
                   sa.or_(col(SlaOverride.category).is_(None), col(SlaOverride.category) == sa.bindparam("category")),
                   sa.or_(col(SlaOverride.region_prefix).is_(None),
                          (sa.bindparam("village_code", type_=sa.String) if village_code is None else village_code)
                          .startswith(col(SlaOverride.region_prefix))))
            .order_by(col(SlaOverride.agency_id).is_(None), col(SlaOverride.category).is_(None),
                      sa.func.length(sa.func.coalesce(col(SlaOverride.region_prefix), "")).desc())
            .limit(1).lateral("override"))


def _terms(agency: sa.Subquery, village_code: Any = None) -> sa.Select[Any]:
    """Per row of `agency` (a subquery with an `id`): its id (`agency_id`), the SLA override and the escalation delay
    that apply (their columns NULL where none is set: then the defaults in code), in one statement."""
    override = _override(agency.c.id, village_code)
    delay = (select(col(EscalationDelay.delay), col(EscalationDelay.unit))
             .where(EscalationDelay.urgency == sa.bindparam("urgency")).subquery("delay"))
    return (sa.select(agency.c.id.label("agency_id"), override.c.respond_within, override.c.complete_within,
                      override.c.unit.label("sla_unit"), delay.c.delay, delay.c.unit.label("delay_unit"))
            .select_from(agency.outerjoin(override, sa.true()).outerjoin(delay, sa.true())))


def _terms_parameters(referral: Referral) -> dict[str, Any]:
    return {"urgency": referral.urgency, "category": referral.category, "village_code": referral.village_code}


# Built once (the values are bound per execution), so a referral neither rebuilds nor recompiles them.
#: The override that applies to the referral's agency (`agency_id`).
_SLA = sa.select(_override(sa.bindparam("agency_id", type_=sa.Uuid)))
#: The terms of a given agency (`agency_id`).
_HELD_TERMS = _terms(sa.select(sa.cast(sa.bindparam("agency_id", type_=sa.Uuid), sa.Uuid).label("id"))
                     .subquery("agency"))
#: The responsible agency (routing/service.py, its `route_parameters`) with its terms.
_ROUTED_TERMS = _terms(RESPONSIBLE_AGENCY_ID.subquery("agency"))


def routed_terms_in(village_code: sa.ColumnElement[str]) -> sa.Subquery:
    """`_ROUTED_TERMS` for the village an expression gives (for a statement that reads the household too), at most
    one row; binds `route_parameters` but the village's, and `urgency`. Build it once."""
    return _terms(responsible_agency_id_in(village_code).subquery("agency"), village_code).subquery("terms")


async def sla_for(session: AsyncSession, referral: Referral) -> Sla:
    """The deadlines that apply to the referral: the most specific override, else the defaults in code."""
    row = (await session.execute(_SLA, {**_terms_parameters(referral), "agency_id": referral.agency_id})).first()
    return DEFAULT_SLA[Urgency(referral.urgency)] if row is None else Sla(row[0], row[1], Unit(row[2]))


async def start_clocks(session: AsyncSession, referral: Referral, now: datetime) -> None:
    """Set the deadlines from now (the referral just reached its agency); earlier overdue marks no longer apply.

    The deadlines are computed once, here: a later change of overrides, delays or calendars leaves them be."""
    row = (await session.execute(_HELD_TERMS, {**_terms_parameters(referral),
                                               "agency_id": referral.agency_id})).one()
    await _set_deadlines(session, referral, row, now)


async def route_and_start_clocks(session: AsyncSession, referral: Referral, now: datetime) -> bool:
    """Assign the responsible agency (routing/service.py) and set the deadlines, reading all of it in one
    statement; False when there is no agency (the referral waits unrouted, its deadlines untouched)."""
    parameters = route_parameters(spm_field=referral.spm_field, village_code=referral.village_code,
                                  category=referral.category)
    row = (await session.execute(_ROUTED_TERMS, {**parameters, "urgency": referral.urgency})).first()
    return await start_routed_clocks(session, referral, row, now)


async def start_routed_clocks(session: AsyncSession, referral: Referral, terms: sa.Row[Any] | None,
                              now: datetime) -> bool:
    """`route_and_start_clocks` with the responsible agency's terms read already (`routed_terms_in`'s columns; None,
    or a NULL `agency_id`, when there is no agency): False, and the referral waits unrouted."""
    if terms is None or terms.agency_id is None:
        return False
    referral.agency_id = terms.agency_id
    await _set_deadlines(session, referral, terms, now)
    return True


async def _set_deadlines(session: AsyncSession, referral: Referral, terms: sa.Row[Any], now: datetime) -> None:
    urgency = Urgency(referral.urgency)
    sla = (DEFAULT_SLA[urgency] if terms.respond_within is None
           else Sla(terms.respond_within, terms.complete_within, Unit(terms.sla_unit)))
    delay, delay_unit = ((ESCALATION_DELAY[urgency], Unit.DAYS) if terms.delay is None
                         else (terms.delay, Unit(terms.delay_unit)))
    # Holidays are read only when a duration counts working days (then once, for every deadline).
    holidays = (await holidays_in_force(session, now.year, now.year + 3)
                if Unit.WORKING_DAYS in (sla.unit, delay_unit) else set())
    zone = local_zone(referral.village_code)

    def after(start: datetime, duration: timedelta, unit: Unit) -> datetime:
        return add_working_days(start, duration.days, holidays, zone) if unit is Unit.WORKING_DAYS \
            else start + duration

    referral.respond_by = after(now, sla.respond_within, sla.unit)
    referral.complete_by = after(now, sla.complete_within, sla.unit)
    referral.escalate_at = after(referral.complete_by, delay, delay_unit)
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
