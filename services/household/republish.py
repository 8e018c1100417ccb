"""Re-announce the household service's current state, so that consumers can rebuild their read models from topics.

`posyandu.household.v1` keeps 30 days (deploy/README.md "Topics"): a consumer rebuilt after that has lost the older
history. A republish publishes, through the outbox, every household with its members, profile versions,
measurements, needs, visits, doses and merges, and every session, as the existing event types carrying the current
state (README "Household snapshot republish"):

- each event is marked `snapshot: true` (a CloudEvent extension) and its `time` is when that state came about (the
  household's or member's creation, the profile's or measurement's recording, the need's detection and resolution),
  so a projection that takes times from events (reporting's first-seen and need times) gets the same ones;
- households and members go out as `registered` / `member.added` with their current status and version, so
  consumers apply them as versioned upserts (an equal version changes nothing) and no life-event side effect runs
  again; immutable records (profiles, measurements, visits, doses) are inserted once by id;
- it walks the households by id in chunks of `chunk_size`, one transaction per chunk (memory stays flat, and a
  long republish never holds one huge transaction); a household changed meanwhile is announced by its own newer
  event as well, which wins by version.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any, TypeVar

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col, select

from services.household.households.service import household_data, member_data
from services.household.identifiers import mask_nik
from services.household.immunization import repository as immunization
from services.household.immunization.status import status
from services.household.immunization.tables import Dose
from services.household.sessions.service import data as session_data
from services.household.tables import Household, Measurement, Member, Need, PosyanduSession, ProfileVersion, Visit
from services.household.visits.service import event_data as visit_data
from shared.auth import Role, require_roles
from shared.clock import NowDep
from shared.events import household as ev
from shared.events.catalogue import EventType
from shared.events.envelope import CloudEvent
from shared.events.topics import SpmField
from shared.outbox import publish_many


class RepublishReport(BaseModel):
    """What a republish announced: events per kind."""

    households: int = 0
    members: int = 0
    merges: int = 0
    profiles: int = 0
    measurements: int = 0
    needs_open: int = 0
    needs_resolved: int = 0
    visits: int = 0
    doses: int = 0
    sessions: int = 0
    events: int = 0


def snapshot(event_type: EventType[Any], data: BaseModel, *, subject: str, time: datetime,
             regioncode: str | None) -> CloudEvent:
    """A snapshot event: the type's envelope, marked, at the time the state came about."""
    return event_type.new(data, subject=subject, regioncode=regioncode).model_copy(
        update={"time": time, "snapshot": True})


R = TypeVar("R")


async def _of(session: AsyncSession, table: type[R], ids: list[uuid.UUID], *order: Any) -> dict[uuid.UUID, list[R]]:
    """The rows of a household table for these households, per household, in the order given."""
    grouped: dict[uuid.UUID, list[R]] = defaultdict(list)
    column = col(table.household_id)  # type: ignore[attr-defined]
    for row in (await session.execute(select(table).where(column.in_(ids)).order_by(*order))).scalars():
        grouped[row.household_id].append(row)  # type: ignore[attr-defined]
    return grouped


def _need(n: Need, h: Household, owner: Member | None) -> ev.NeedData:
    return ev.NeedData(need_id=n.id, household_id=h.id, member_id=n.member_id,
                       member_nik_masked=mask_nik(owner.nik) if owner is not None and owner.nik else None,
                       posyandu_id=h.posyandu_id, village_code=h.village_code, spm_field=SpmField(n.spm_field),
                       category=n.category, urgency=n.urgency, evidence=n.evidence, resolution=n.resolution)


def _measurement(x: Measurement) -> ev.MeasurementData:
    return ev.MeasurementData(measurement_id=x.id, household_id=x.household_id, member_id=x.member_id,
                              measured_on=x.measured_on, age_days=x.age_days, waz=x.waz, haz=x.haz, whz=x.whz,
                              waz_class=x.waz_class, haz_class=x.haz_class, whz_class=x.whz_class,
                              muac_class=x.muac_class, kms_signal=x.kms_signal)


async def _household_chunk(session: AsyncSession, households: Sequence[Household], today: date,
                           report: RepublishReport) -> list[CloudEvent]:
    """The snapshot events of a chunk of households, each household's in the order its live events come."""
    ids = [h.id for h in households]
    members = await _of(session, Member, ids, col(Member.created_at), col(Member.id))
    profiles = await _of(session, ProfileVersion, ids, col(ProfileVersion.spm_field), col(ProfileVersion.version))
    measurements = await _of(session, Measurement, ids, col(Measurement.measured_on), col(Measurement.id))
    needs = await _of(session, Need, ids, col(Need.detected_at), col(Need.id))
    visits = await _of(session, Visit, ids, col(Visit.visited_on), col(Visit.id))
    doses = await _of(session, Dose, ids, col(Dose.given_on), col(Dose.id))
    everyone = {m.id: m for group in members.values() for m in group}
    elsewhere = {d.member_id for group in doses.values() for d in group} - set(everyone)
    if elsewhere:  # a dose whose child's row is of another household (never, unless data were mended by hand)
        everyone |= {m.id: m for m in (await session.execute(select(Member).where(
            col(Member.id).in_(elsewhere)))).scalars()}
    survivors = {m.merged_into for m in everyone.values() if m.merged_into is not None} - set(everyone)
    survivor_households = {m.id: m.household_id for m in (await session.execute(
        select(Member).where(col(Member.id).in_(survivors)))).scalars()} if survivors else {}
    survivor_households |= {m.id: m.household_id for m in everyone.values()}
    schedule = await immunization.load_schedule(session)
    live = await immunization.live_doses(session, list(everyone))
    entries: list[CloudEvent] = []
    for h in households:
        def add(event_type: EventType[Any], data: BaseModel, time: datetime, *, household: Household = h) -> None:
            entries.append(snapshot(event_type, data, subject=str(household.id), time=time,
                                    regioncode=household.village_code))

        add(ev.HOUSEHOLD_REGISTERED, household_data(h), h.created_at)
        report.households += 1
        for m in members[h.id]:
            add(ev.MEMBER_ADDED, member_data(m), m.created_at)
            report.members += 1
        for p in profiles[h.id]:
            add(ev.PROFILE_UPDATED, ev.ProfileUpdatedData(household_id=h.id, spm_field=SpmField(p.spm_field),
                                                          version=p.version, observed_on=p.observed_on,
                                                          profile=p.data), p.recorded_at)
            report.profiles += 1
        for x in measurements[h.id]:
            add(ev.MEASUREMENT_RECORDED, _measurement(x), x.recorded_at)
            report.measurements += 1
        for n in needs[h.id]:
            need = _need(n, h, everyone.get(n.member_id) if n.member_id else None)
            add(ev.NEED_DETECTED, need, n.detected_at)
            if n.resolved_at is not None:
                add(ev.NEED_RESOLVED, need, n.resolved_at)
                report.needs_resolved += 1
            else:
                report.needs_open += 1
        for v in visits[h.id]:
            add(ev.VISIT_RECORDED, visit_data(v), v.recorded_at)
            report.visits += 1
        for d in doses[h.id]:
            child = everyone[d.member_id]
            # The child's status now (what the service would publish after its latest change).
            computed = status(child.birth_date, immunization.given(live.get(child.id, [])), on=today,
                              schedule=schedule, village_code=h.village_code)
            add(ev.IMMUNIZATION_VOIDED if d.status == "voided" else ev.IMMUNIZATION_RECORDED, ev.ImmunizationData(
                dose_id=d.id, household_id=h.id, member_id=d.member_id, vaccine=d.vaccine, dose_number=d.dose_number,
                given_on=d.given_on, place=d.place, lot_number=d.lot_number,
                age_days=(d.given_on - child.birth_date).days, source="snapshot",
                immunization_status=computed.status, schedule_version=computed.schedule_version),
                d.voided_at or d.recorded_at)
            report.doses += 1
        for m in members[h.id]:
            if m.merged_into is not None:
                add(ev.MEMBER_MERGED, ev.MemberMergedData(
                    survivor_id=m.merged_into, merged_id=m.id, merged_household_id=m.household_id,
                    survivor_household_id=survivor_households.get(m.merged_into, m.household_id)), m.updated_at)
                report.merges += 1
    return entries


async def republish(sessionmaker: async_sessionmaker[AsyncSession], *, today: date,
                    chunk_size: int) -> RepublishReport:
    """Publish the current state of every household (and everything of it) and every session again."""
    report = RepublishReport()
    after: uuid.UUID | None = None
    while True:
        async with sessionmaker() as session, session.begin():
            query = select(Household).order_by(col(Household.id)).limit(chunk_size)
            if after is not None:
                query = query.where(col(Household.id) > after)
            households = (await session.execute(query)).scalars().all()
            if not households:
                break
            report.events += await publish_many(session, await _household_chunk(session, households, today, report))
            after = households[-1].id
    after = None
    while True:
        async with sessionmaker() as session, session.begin():
            sessions_query = select(PosyanduSession).order_by(col(PosyanduSession.id)).limit(chunk_size)
            if after is not None:
                sessions_query = sessions_query.where(col(PosyanduSession.id) > after)
            opened = (await session.execute(sessions_query)).scalars().all()
            if not opened:
                break
            report.events += await publish_many(session, [
                snapshot(ev.SESSION_OPENED, session_data(s), subject=str(s.id), time=s.opened_at,
                         regioncode=s.village_code) for s in opened])
            report.sessions += len(opened)
            after = opened[-1].id
    return report


router = APIRouter(prefix="/api/v1/households", tags=["operations"])


@router.post("/republish", response_model=RepublishReport,
             summary="Publish the current state of every household, member, profile, measurement, need, visit, "
                     "dose and session again as snapshot events (admin)")
async def republish_households(request: Request, now: NowDep,
                               _: Any = Depends(require_roles(Role.ADMIN))) -> Any:
    # Not the request's one transaction: a chunk per transaction, so the state of millions of members never
    # sits in one (each chunk commits its outbox rows; a failure part-way leaves a partial republish, harmless).
    settings = request.state.settings
    return await republish(request.state.sessionmaker, today=now.date(), chunk_size=settings.republish_chunk_size)
