"""Handlers of the registry's programme and agency events: which agency owns a programme, for which field, service
type, regions and period; and each agency's jurisdiction. Versioned upserts: a late or repeated event changes
nothing."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.household.beneficiaries.tables import KnownAgency, KnownProgramme
from services.household.tables import metadata
from shared.events import programmes as prog
from shared.events import registry as reg
from shared.events.envelope import CloudEvent
from shared.events.topics import REGISTRY_TOPIC
from shared.projection import Projection, handles
from shared.versioned import upsert_newer


class ProgrammeEvents(Projection):
    topics = (REGISTRY_TOPIC,)

    @handles(prog.PROGRAMME_REGISTERED, prog.PROGRAMME_UPDATED)
    async def on_programme(self, session: AsyncSession, event: CloudEvent, data: prog.ProgrammeData) -> None:
        await upsert_newer(session, metadata.tables[KnownProgramme.__tablename__], {
            "id": data.programme_id, "agency_id": data.agency_id, "name": data.name,
            "spm_field": data.spm_field.value, "service_type": data.service_type,
            "region_codes": list(data.region_codes), "period_start": data.period_start,
            "period_end": data.period_end, "status": data.status.value, "version": data.version})

    @handles(reg.AGENCY_REGISTERED, reg.AGENCY_UPDATED, reg.AGENCY_DEACTIVATED)
    async def on_agency(self, session: AsyncSession, event: CloudEvent, data: reg.AgencyData) -> None:
        await upsert_newer(session, metadata.tables[KnownAgency.__tablename__], {
            "id": data.agency_id, "jurisdiction_code": data.jurisdiction_code,
            "spm_fields": [f.value for f in data.spm_fields], "status": data.status.value, "version": data.version})
