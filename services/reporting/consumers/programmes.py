"""Handlers for the SPM input events on posyandu.registry.v1: programmes, their monthly realisation and the
agencies' own target figures (issue 15). Each event carries the whole state and its version: upserts where an
older version never overwrites a newer one, so any order of delivery converges (a realisation that arrives before
its programme is kept, and counts once the programme is known)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.reporting.consumers import codes
from services.reporting.tables import SpmProgrammeRow, SpmRealisationRow, SpmTargetFigureRow
from shared.events import programmes as ev
from shared.events.envelope import CloudEvent
from shared.events.topics import REGISTRY_TOPIC
from shared.projection import Projection, handles
from shared.versioned import upsert_newer

programmes = SpmProgrammeRow.__table__  # type: ignore[attr-defined]
realisations = SpmRealisationRow.__table__  # type: ignore[attr-defined]
figures = SpmTargetFigureRow.__table__  # type: ignore[attr-defined]


def _lines(lines: list[ev.BudgetLine]) -> list[dict[str, object]]:
    return [{"source": line.source.value, "amount": line.amount} for line in lines]


class ProgrammeEvents(Projection):
    topics = (REGISTRY_TOPIC,)

    @handles(ev.PROGRAMME_REGISTERED, ev.PROGRAMME_UPDATED)
    async def on_programme(self, session: AsyncSession, event: CloudEvent, data: ev.ProgrammeData) -> None:
        await upsert_newer(session, programmes, {
            "id": data.programme_id, "agency_id": data.agency_id, "spm_field": data.spm_field.value,
            "service_type": data.service_type, "region_codes": [codes.jurisdiction(c) for c in data.region_codes],
            "period_start": data.period_start, "period_end": data.period_end, "status": data.status.value,
            "budget": _lines(data.budget), "version": data.version})

    @handles(ev.PROGRAMME_REALISED)
    async def on_realisation(self, session: AsyncSession, event: CloudEvent, data: ev.RealisationData) -> None:
        await upsert_newer(session, realisations, {
            "programme_id": data.programme_id, "month": data.month, "agency_id": data.agency_id,
            "spent": _lines(data.spent), "outputs": [{"code": o.code, "quantity": o.quantity} for o in data.outputs],
            "version": data.version}, key=("programme_id", "month"))

    @handles(ev.TARGET_FIGURE_SET)
    async def on_target_figure(self, session: AsyncSession, event: CloudEvent, data: ev.TargetFigureData) -> None:
        await upsert_newer(session, figures, {
            "agency_id": data.agency_id, "region_code": codes.jurisdiction(data.region_code), "year": data.year,
            "service_type": data.service_type, "target": data.target, "version": data.version,
            "set_at": event.time}, key=("agency_id", "region_code", "year", "service_type"))
