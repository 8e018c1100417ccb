"""Handlers for the SPM input events on posyandu.registry.v1: programmes, their monthly realisation and the
agencies' own target figures (issue 15). Each event carries the whole state and its version: upserts where an
older version never overwrites a newer one, so any order of delivery converges (a realisation that arrives before
its programme is kept, and counts once the programme is known)."""

from __future__ import annotations

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.reporting.consumers import codes
from services.reporting.tables import SpmProgrammeRow, SpmRealisationRow, SpmTargetFigureRow
from shared.consumer import Batched, Handler
from shared.events import programmes as ev
from shared.events.envelope import CloudEvent

programmes = SpmProgrammeRow.__table__  # type: ignore[attr-defined]
realisations = SpmRealisationRow.__table__  # type: ignore[attr-defined]
figures = SpmTargetFigureRow.__table__  # type: ignore[attr-defined]


def _lines(lines: list[ev.BudgetLine]) -> list[dict[str, object]]:
    return [{"source": line.source.value, "amount": line.amount} for line in lines]


async def on_programme(session: AsyncSession, event: CloudEvent) -> None:
    data = ev.ProgrammeData.model_validate(event.data)
    values = {"agency_id": data.agency_id, "spm_field": data.spm_field.value, "service_type": data.service_type,
              "region_codes": [codes.jurisdiction(code) for code in data.region_codes],
              "period_start": data.period_start, "period_end": data.period_end, "status": data.status.value,
              "budget": _lines(data.budget), "version": data.version}
    await session.execute(insert(programmes).values(id=data.programme_id, **values).on_conflict_do_update(
        index_elements=["id"], set_=values, where=programmes.c.version < data.version))


async def on_realisation(session: AsyncSession, event: CloudEvent) -> None:
    data = ev.RealisationData.model_validate(event.data)
    values = {"agency_id": data.agency_id, "spent": _lines(data.spent),
              "outputs": [{"code": o.code, "quantity": o.quantity} for o in data.outputs], "version": data.version}
    await session.execute(insert(realisations).values(programme_id=data.programme_id, month=data.month, **values)
                          .on_conflict_do_update(index_elements=["programme_id", "month"], set_=values,
                                                 where=realisations.c.version < data.version))


async def on_target_figure(session: AsyncSession, event: CloudEvent) -> None:
    data = ev.TargetFigureData.model_validate(event.data)
    key = {"agency_id": data.agency_id, "region_code": codes.jurisdiction(data.region_code), "year": data.year,
           "service_type": data.service_type}
    values = {"target": data.target, "version": data.version, "set_at": event.time}
    await session.execute(insert(figures).values(**key, **values).on_conflict_do_update(
        index_elements=list(key), set_=values, where=figures.c.version < data.version))


def handlers() -> dict[str, Handler | Batched]:
    return {ev.PROGRAMME_REGISTERED.name: on_programme, ev.PROGRAMME_UPDATED.name: on_programme,
            ev.PROGRAMME_REALISED.name: on_realisation, ev.TARGET_FIGURE_SET.name: on_target_figure}
