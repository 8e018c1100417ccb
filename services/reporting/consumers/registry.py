"""Handlers for posyandu.registry.v1: region names, posyandu villages and agencies (the matrix's rows)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.reporting.consumers import codes
from services.reporting.tables import AgencyRow, PosyanduRow, RegionRow
from shared.events import registry as reg
from shared.events.envelope import CloudEvent
from shared.events.topics import REGISTRY_TOPIC
from shared.projection import Projection, handles
from shared.versioned import upsert_newer

regions = RegionRow.__table__  # type: ignore[attr-defined]
posyandu = PosyanduRow.__table__  # type: ignore[attr-defined]
agencies = AgencyRow.__table__  # type: ignore[attr-defined]


class RegistryEvents(Projection):
    topics = (REGISTRY_TOPIC,)

    @handles(reg.REGION_REGISTERED, reg.REGION_RENAMED, reg.REGION_RETIRED)
    async def on_region(self, session: AsyncSession, event: CloudEvent, data: reg.RegionData) -> None:
        """Upserts a region; region events carry no version, so the newer event time wins."""
        await upsert_newer(session, regions, {
            "code": data.code, "name": data.name, "level": data.level.value, "parent_code": data.parent_code,
            "retired": event.type == reg.REGION_RETIRED.name, "event_time": event.time},
            key=("code",), version="event_time")

    @handles(reg.POSYANDU_REGISTERED, reg.POSYANDU_UPDATED, reg.POSYANDU_DEACTIVATED)
    async def on_posyandu(self, session: AsyncSession, event: CloudEvent, data: reg.PosyanduData) -> None:
        """Upserts a posyandu's village and status (an older version never overwrites a newer one)."""
        await upsert_newer(session, posyandu, {
            "id": data.posyandu_id, "village_code": codes.village(data.village_code), "status": data.status.value,
            "version": data.version})

    @handles(reg.AGENCY_REGISTERED, reg.AGENCY_UPDATED, reg.AGENCY_DEACTIVATED)
    async def on_agency(self, session: AsyncSession, event: CloudEvent, data: reg.AgencyData) -> None:
        """Upserts an agency's name, level, jurisdiction and fields (newest version wins)."""
        await upsert_newer(session, agencies, {
            "id": data.agency_id, "name": data.name, "level": data.level.value,
            "jurisdiction_code": codes.jurisdiction(data.jurisdiction_code),
            "spm_fields": [f.value for f in data.spm_fields], "status": data.status.value, "version": data.version})
