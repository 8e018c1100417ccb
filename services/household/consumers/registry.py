"""Handlers for posyandu.registry.v1: the regions and posyandu this service validates against."""

from __future__ import annotations

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.household.households.reassignment import flag_village_retired
from services.household.tables import KnownPosyandu, KnownRegion, KnownSchedule, metadata
from shared.clock import Clock, system_clock
from shared.events import registry as reg
from shared.events.envelope import CloudEvent
from shared.events.topics import REGISTRY_TOPIC
from shared.projection import Projection, handles
from shared.versioned import upsert_newer


class RegistryEvents(Projection):
    topics = (REGISTRY_TOPIC,)

    def __init__(self, *, clock: Clock = system_clock) -> None:
        self.clock = clock

    @handles(reg.REGION_REGISTERED, reg.REGION_RENAMED, reg.REGION_RETIRED)
    async def on_region(self, session: AsyncSession, event: CloudEvent, data: reg.RegionData) -> None:
        retired = event.type == reg.REGION_RETIRED.name
        table = metadata.tables[KnownRegion.__tablename__]
        await session.execute(insert(table).values(code=data.code, name=data.name, level=data.level.value,
                                                   retired=retired)
                              .on_conflict_do_update(index_elements=["code"],
                                                     set_={"name": data.name, "retired": retired}))
        if retired and data.level is reg.RegionLevel.VILLAGE:
            # The village left the official list: its households stay, flagged for re-assignment (a household
            # change like any other: a new version and its event).
            await flag_village_retired(session=session, village_code=data.code, now=self.clock())

    @handles(reg.POSYANDU_REGISTERED, reg.POSYANDU_UPDATED, reg.POSYANDU_DEACTIVATED)
    async def on_posyandu(self, session: AsyncSession, event: CloudEvent, data: reg.PosyanduData) -> None:
        await upsert_newer(session, metadata.tables[KnownPosyandu.__tablename__], {
            "id": data.posyandu_id, "village_code": data.village_code, "name": data.name,
            "status": data.status.value, "version": data.version})

    @handles(reg.SCHEDULE_CHANGED)
    async def on_schedule(self, session: AsyncSession, event: CloudEvent, data: reg.ScheduleData) -> None:
        # The rule and exceptions are the whole schedule; the listed dates cover only its next months.
        schedule = reg.ScheduleRules.model_validate(data, from_attributes=True).model_dump(mode="json")
        await upsert_newer(session, metadata.tables[KnownSchedule.__tablename__], {
            "posyandu_id": data.posyandu_id, "schedule": schedule, "version": data.version}, key=("posyandu_id",))
