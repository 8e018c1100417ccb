"""Re-announce the registry's current state, so that consumers can (re)build their read models.

The embedded broker keeps nothing across restarts, and a service that starts consuming late has missed
the history: this publishes every region, posyandu, cadre, agency, schedule, programme with its monthly realisation,
and agency target figure again as the event of its current
state. Consumers treat those events as upserts (they are versioned where versions exist), so a
republish is harmless to those that already know.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from services.registry.agencies.service import agency_data
from services.registry.posyandu.service import cadre_data, posyandu_data
from services.registry.programmes.service import programme_data, realisation_data
from services.registry.schedule.service import event_data as schedule_event
from services.registry.spm.service import event_data as target_event
from services.registry.spm.service import subject as target_subject
from services.registry.tables import (
    Agency,
    Cadre,
    Posyandu,
    PosyanduSchedule,
    Programme,
    ProgrammeRealisation,
    Region,
    ScheduleException,
    TargetFigure,
)
from shared.auth import Role, require_roles
from shared.clock import NowDep
from shared.db import SessionDep
from shared.events import programmes as pev
from shared.events import registry as ev
from shared.events.catalogue import EventType
from shared.events.envelope import CloudEvent
from shared.outbox import publish_many

router = APIRouter(prefix="/api/v1/registry", tags=["operations"])


class RepublishReport(BaseModel):
    regions: int
    posyandu: int
    cadres: int
    agencies: int
    schedules: int = 0
    programmes: int = 0
    realisations: int = 0
    target_figures: int = 0


async def republish(session: AsyncSession, *, today: date) -> RepublishReport:
    events: list[CloudEvent] = []

    def add(event_type: EventType[Any], data: BaseModel, subject: str, regioncode: str | None = None) -> None:
        events.append(event_type.new(data, subject=subject, regioncode=regioncode))

    regions = (await session.execute(select(Region).order_by(col(Region.code)))).scalars().all()
    for r in regions:
        data = ev.RegionData(code=r.code, name=r.name, level=ev.RegionLevel(r.level), parent_code=r.parent_code,
                             kind=r.kind, list_version=r.list_version)
        add(ev.REGION_RETIRED if r.retired_at else ev.REGION_REGISTERED, data, r.code,
            r.code if len(r.code) == 10 else None)
    posyandu = (await session.execute(select(Posyandu).order_by(col(Posyandu.created_at)))).scalars().all()
    for p in posyandu:
        add(ev.POSYANDU_REGISTERED if p.status == "active" else ev.POSYANDU_DEACTIVATED, posyandu_data(p), str(p.id),
            p.village_code)
    cadres = (await session.execute(select(Cadre).order_by(col(Cadre.created_at)))).scalars().all()
    villages = {p.id: p.village_code for p in posyandu}
    for c in cadres:
        add(ev.CADRE_ASSIGNED if c.status == "active" else ev.CADRE_UNASSIGNED, cadre_data(c), str(c.posyandu_id),
            villages.get(c.posyandu_id))
    agencies = (await session.execute(select(Agency).order_by(col(Agency.created_at)))).scalars().all()
    for a in agencies:
        add(ev.AGENCY_REGISTERED if a.status == "active" else ev.AGENCY_DEACTIVATED, agency_data(a), str(a.id))
    by_id = {p.id: p for p in posyandu}
    schedules = (await session.execute(select(PosyanduSchedule))).scalars().all()
    exceptions = (await session.execute(select(ScheduleException).order_by(col(ScheduleException.on_date))
                                        )).scalars().all()
    for sch in schedules:
        owner = by_id[sch.posyandu_id]
        own = [e for e in exceptions if e.posyandu_id == owner.id]
        add(ev.SCHEDULE_CHANGED, schedule_event(owner, sch, own, today), str(owner.id), owner.village_code)
    programmes = (await session.execute(select(Programme).order_by(col(Programme.created_at)))).scalars().all()
    for prog in programmes:
        add(pev.PROGRAMME_REGISTERED if prog.version == 1 else pev.PROGRAMME_UPDATED, programme_data(prog),
            str(prog.id))
    by_programme = {prog.id: prog for prog in programmes}
    realisations = (await session.execute(select(ProgrammeRealisation).order_by(
        col(ProgrammeRealisation.programme_id), col(ProgrammeRealisation.month)))).scalars().all()
    for real in realisations:
        add(pev.PROGRAMME_REALISED, realisation_data(by_programme[real.programme_id], real), str(real.programme_id))
    figures = (await session.execute(select(TargetFigure))).scalars().all()
    for figure in figures:
        add(pev.TARGET_FIGURE_SET, target_event(figure), target_subject(figure))
    await publish_many(session, events)
    return RepublishReport(regions=len(regions), posyandu=len(posyandu), cadres=len(cadres), agencies=len(agencies),
                           schedules=len(schedules), programmes=len(programmes), realisations=len(realisations),
                           target_figures=len(figures))


@router.post("/republish", response_model=RepublishReport,
             summary="Publish the current state of every region, posyandu, cadre, agency, schedule, programme, "
                     "realisation and target figure again (admin)")
async def republish_registry(session: SessionDep, now: NowDep,
                             _: Any = Depends(require_roles(Role.ADMIN))) -> Any:
    return await republish(session, today=now.date())
