"""Handlers for posyandu.registry.v1: the regions and posyandu this service validates against."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from services.household.beneficiaries import projection as programmes
from services.household.tables import Household, KnownPosyandu, KnownRegion, KnownSchedule, metadata
from shared.consumer import Handler
from shared.events import registry as reg
from shared.events.envelope import CloudEvent


async def on_region(session: AsyncSession, event: CloudEvent) -> None:
    data = reg.RegionData.model_validate(event.data)
    retired = event.type == reg.REGION_RETIRED.name
    table = metadata.tables[KnownRegion.__tablename__]
    await session.execute(insert(table).values(code=data.code, name=data.name, level=data.level.value,
                                               retired=retired)
                          .on_conflict_do_update(index_elements=["code"],
                                                 set_={"name": data.name, "retired": retired}))
    if retired and data.level is reg.RegionLevel.VILLAGE:
        # The village left the official list: its households stay, flagged for re-assignment.
        await session.execute(sa.update(Household).where(col(Household.village_code) == data.code)
                              .values(needs_reassignment=True))


async def on_posyandu(session: AsyncSession, event: CloudEvent) -> None:
    data = reg.PosyanduData.model_validate(event.data)
    table = metadata.tables[KnownPosyandu.__tablename__]
    values = {"village_code": data.village_code, "name": data.name, "status": data.status.value,
              "version": data.version}
    # Versions make a late or repeated event harmless: an older version never overwrites a newer one.
    await session.execute(insert(table).values(id=data.posyandu_id, **values).on_conflict_do_update(
        index_elements=["id"], set_=values, where=table.c.version < data.version))


async def on_schedule(session: AsyncSession, event: CloudEvent) -> None:
    data = reg.ScheduleData.model_validate(event.data)
    table = metadata.tables[KnownSchedule.__tablename__]
    # The rule and exceptions are the whole schedule; the listed dates cover only its next months.
    schedule = reg.ScheduleRules.model_validate(data, from_attributes=True).model_dump(mode="json")
    await session.execute(insert(table).values(posyandu_id=data.posyandu_id, schedule=schedule, version=data.version)
                          .on_conflict_do_update(index_elements=["posyandu_id"],
                                                 set_={"schedule": schedule, "version": data.version},
                                                 where=table.c.version < data.version))


HANDLERS: dict[str, Handler] = {
    reg.REGION_REGISTERED.name: on_region,
    reg.REGION_RENAMED.name: on_region,
    reg.REGION_RETIRED.name: on_region,
    reg.POSYANDU_REGISTERED.name: on_posyandu,
    reg.POSYANDU_UPDATED.name: on_posyandu,
    reg.POSYANDU_DEACTIVATED.name: on_posyandu,
    reg.SCHEDULE_CHANGED.name: on_schedule,
    # Programmes (their beneficiary lists) and agencies' jurisdictions (the aid reports' access).
    **programmes.HANDLERS,
}
