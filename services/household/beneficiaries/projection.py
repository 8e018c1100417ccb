"""Handlers of the registry's programme and agency events: which agency owns a programme, for which field, service
type, regions and period; and each agency's jurisdiction. Versioned upserts: a late or repeated event changes
nothing."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.household.beneficiaries.tables import KnownAgency, KnownProgramme
from services.household.tables import metadata
from shared.consumer import Handler
from shared.events import programmes as prog
from shared.events import registry as reg
from shared.events.envelope import CloudEvent


async def _upsert(session: AsyncSession, table_name: str, key: Any, values: dict[str, Any]) -> None:
    table = metadata.tables[table_name]
    await session.execute(insert(table).values(id=key, **values).on_conflict_do_update(
        index_elements=["id"], set_=values, where=table.c.version < values["version"]))


async def on_programme(session: AsyncSession, event: CloudEvent) -> None:
    data = prog.ProgrammeData.model_validate(event.data)
    await _upsert(session, KnownProgramme.__tablename__, data.programme_id, {
        "agency_id": data.agency_id, "name": data.name, "spm_field": data.spm_field.value,
        "service_type": data.service_type, "region_codes": list(data.region_codes),
        "period_start": data.period_start, "period_end": data.period_end, "status": data.status.value,
        "version": data.version})


async def on_agency(session: AsyncSession, event: CloudEvent) -> None:
    data = reg.AgencyData.model_validate(event.data)
    await _upsert(session, KnownAgency.__tablename__, data.agency_id, {
        "jurisdiction_code": data.jurisdiction_code, "spm_fields": [f.value for f in data.spm_fields],
        "status": data.status.value, "version": data.version})


HANDLERS: dict[str, Handler] = {
    prog.PROGRAMME_REGISTERED.name: on_programme,
    prog.PROGRAMME_UPDATED.name: on_programme,
    reg.AGENCY_REGISTERED.name: on_agency,
    reg.AGENCY_UPDATED.name: on_agency,
    reg.AGENCY_DEACTIVATED.name: on_agency,
}
