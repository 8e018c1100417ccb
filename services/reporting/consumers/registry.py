"""Handlers for posyandu.registry.v1: region names, posyandu villages and agencies (the matrix's rows)."""

from __future__ import annotations

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.reporting.consumers import codes
from services.reporting.tables import AgencyRow, PosyanduRow, RegionRow
from shared.consumer import Batched, Handler
from shared.events import registry as reg
from shared.events.envelope import CloudEvent

regions = RegionRow.__table__  # type: ignore[attr-defined]
posyandu = PosyanduRow.__table__  # type: ignore[attr-defined]
agencies = AgencyRow.__table__  # type: ignore[attr-defined]


async def on_region(session: AsyncSession, event: CloudEvent) -> None:
    """Upserts a region; region events carry no version, so the newer event time wins."""
    data = reg.RegionData.model_validate(event.data)
    values = {"name": data.name, "level": data.level.value, "parent_code": data.parent_code,
              "retired": event.type == reg.REGION_RETIRED.name, "event_time": event.time}
    await session.execute(insert(regions).values(code=data.code, **values).on_conflict_do_update(
        index_elements=["code"], set_=values, where=regions.c.event_time < event.time))


async def on_posyandu(session: AsyncSession, event: CloudEvent) -> None:
    """Upserts a posyandu's village and status (an older version never overwrites a newer one)."""
    data = reg.PosyanduData.model_validate(event.data)
    values = {"village_code": codes.village(data.village_code), "status": data.status.value, "version": data.version}
    await session.execute(insert(posyandu).values(id=data.posyandu_id, **values).on_conflict_do_update(
        index_elements=["id"], set_=values, where=posyandu.c.version < data.version))


async def on_agency(session: AsyncSession, event: CloudEvent) -> None:
    """Upserts an agency's name, level, jurisdiction and fields (newest version wins)."""
    data = reg.AgencyData.model_validate(event.data)
    values = {"name": data.name, "level": data.level.value,
              "jurisdiction_code": codes.jurisdiction(data.jurisdiction_code),
              "spm_fields": [f.value for f in data.spm_fields], "status": data.status.value, "version": data.version}
    await session.execute(insert(agencies).values(id=data.agency_id, **values).on_conflict_do_update(
        index_elements=["id"], set_=values, where=agencies.c.version < data.version))


def handlers() -> dict[str, Handler | Batched]:
    table: dict[str, Handler | Batched] = {}
    for event_type in (reg.REGION_REGISTERED, reg.REGION_RENAMED, reg.REGION_RETIRED):
        table[event_type.name] = on_region
    for event_type in (reg.POSYANDU_REGISTERED, reg.POSYANDU_UPDATED, reg.POSYANDU_DEACTIVATED):
        table[event_type.name] = on_posyandu
    for event_type in (reg.AGENCY_REGISTERED, reg.AGENCY_UPDATED, reg.AGENCY_DEACTIVATED):
        table[event_type.name] = on_agency
    return table
