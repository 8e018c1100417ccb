"""Programmes (issue 15): an agency's or partner organisation's inputs to posyandu (budget by source, planned
outputs), their monthly realisation, and the history of every change; each change an event, in its transaction.

Who may read and change a programme: `programmes/access.py`.
"""

from __future__ import annotations

import calendar
import uuid
from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from services.registry.agencies.acting import acting_agency
from services.registry.programmes.access import readable_statement, require_reader, require_writer, touching
from services.registry.programmes.schemas import (
    BudgetLineIn,
    BudgetProgress,
    OutputProgress,
    PlannedOutputIn,
    ProgrammeCreate,
    ProgrammePublic,
    ProgrammeUpdate,
    RealisationPublic,
    Realisations,
    RealisationWrite,
)
from services.registry.tables import Agency, Programme, ProgrammeChange, ProgrammeRealisation, Region
from shared.auth import Principal, Role
from shared.concurrency import check_if_match, require_if_match
from shared.errors import Conflict, Forbidden, NotFound, ValidationFailed
from shared.events import programmes as ev
from shared.events.topics import SpmField
from shared.outbox import publish
from shared.spm import SERVICE_TYPES


class ProgrammeNotFound(NotFound):
    pass


def public(p: Programme) -> ProgrammePublic:
    return ProgrammePublic.model_validate(p, from_attributes=True)


def programme_data(p: Programme) -> ev.ProgrammeData:
    return ev.ProgrammeData(
        programme_id=p.id, agency_id=p.agency_id, name=p.name, spm_field=SpmField(p.spm_field),
        service_type=p.service_type, region_codes=list(p.region_codes), period_start=p.period_start,
        period_end=p.period_end, budget=[ev.BudgetLine.model_validate(b) for b in p.budget],
        outputs=[ev.PlannedOutput.model_validate(o) for o in p.outputs], status=ev.ProgrammeStatus(p.status),
        version=p.version)


def realisation_public(r: ProgrammeRealisation) -> RealisationPublic:
    return RealisationPublic.model_validate(r, from_attributes=True)


def realisation_data(p: Programme, r: ProgrammeRealisation) -> ev.RealisationData:
    return ev.RealisationData(programme_id=p.id, agency_id=p.agency_id, month=r.month,
                              outputs=[ev.DeliveredOutput.model_validate(o) for o in r.outputs],
                              spent=[ev.BudgetLine.model_validate(s) for s in r.spent], version=r.version)


# --- validation ---------------------------------------------------------------------------------------------------

def month_bounds(month: str) -> tuple[date, date]:
    year, number = int(month[:4]), int(month[5:])
    return date(year, number, 1), date(year, number, calendar.monthrange(year, number)[1])


def _in_period(month: str, start: date, end: date) -> bool:
    first, last = month_bounds(month)
    return first <= end and last >= start


def _duplicates(values: list[str]) -> list[int]:
    seen: set[str] = set()
    found = []
    for i, value in enumerate(values):
        if value in seen:
            found.append(i)
        seen.add(value)
    return found


async def _check(session: AsyncSession, agency: Agency, plan: ProgrammeCreate,
                 realised: list[ProgrammeRealisation]) -> None:
    """Every rule a programme must meet, all problems at once (422 naming each field); `realised` are its reported
    months, which a change must keep valid (their month in the period, their codes and sources planned)."""
    errors: list[dict[str, Any]] = []
    service_type = SERVICE_TYPES.get(plan.service_type)
    if service_type is None:
        errors.append({"field": "service_type", "message": f"unknown SPM service type {plan.service_type}"})
    elif service_type.spm_field is not plan.spm_field:
        errors.append({"field": "service_type", "message": f"{plan.service_type} is a service type of "
                       f"{service_type.spm_field.value}, not {plan.spm_field.value}"})
    if plan.spm_field.value not in agency.spm_fields:
        errors.append({"field": "spm_field", "message": f"{plan.spm_field.value} is not a field of the agency"})
    known = set((await session.execute(select(Region.code).where(col(Region.code).in_(plan.region_codes),
                                                                  col(Region.retired_at).is_(None)))).scalars())
    for i, code in enumerate(plan.region_codes):
        if code not in known:
            errors.append({"field": f"region_codes.{i}", "message": f"{code} is not an active region"})
        elif not code.startswith(agency.jurisdiction_code):
            errors.append({"field": f"region_codes.{i}",
                           "message": f"{code} lies outside the agency's jurisdiction {agency.jurisdiction_code}"})
    errors += [{"field": f"region_codes.{i}", "message": "named twice"} for i in _duplicates(plan.region_codes)]
    if plan.period_end < plan.period_start:
        errors.append({"field": "period_end", "message": "before period_start"})
    errors += [{"field": f"budget.{i}.source", "message": "one line per source"}
               for i in _duplicates([b.source.value for b in plan.budget])]
    errors += [{"field": f"outputs.{i}.code", "message": "output codes must be unique"}
               for i in _duplicates([o.code for o in plan.outputs])]
    planned, sources = {o.code for o in plan.outputs}, {b.source.value for b in plan.budget}
    for r in realised:
        if plan.period_end >= plan.period_start and not _in_period(r.month, plan.period_start, plan.period_end):
            errors.append({"field": "period_end", "message": f"the realised month {r.month} would fall outside"})
        for code in sorted({o["code"] for o in r.outputs} - planned):
            errors.append({"field": "outputs", "message": f"{code} was realised in {r.month}: keep it planned"})
        for source in sorted({s["source"] for s in r.spent} - sources):
            errors.append({"field": "budget", "message": f"{source} was spent in {r.month}: keep it budgeted"})
    if errors:
        raise ValidationFailed("The programme does not meet the rules.", errors=errors)


# --- programmes ---------------------------------------------------------------------------------------------------

async def _record(session: AsyncSession, programme: Programme, *, action: str, version: int, actor: str,
                  at: datetime, state: dict[str, Any], month: str | None = None) -> None:
    session.add(ProgrammeChange(programme_id=programme.id, action=action, month=month, version=version, actor=actor,
                                at=at, state=state))
    await session.flush()


def _dump(lines: Iterable[BaseModel]) -> list[dict[str, Any]]:
    return [line.model_dump(mode="json") for line in lines]


async def register(*, session: AsyncSession, principal: Principal, payload: ProgrammeCreate,
                   now: datetime) -> Programme:
    """Registers a programme for the caller's agency (or, for an admin, the agency it names)."""
    agency = await acting_agency(session, principal, named=payload.agency_id, field=payload.spm_field,
                                 what="programmes")
    await _check(session, agency, payload, [])
    programme = Programme(agency_id=agency.id, name=payload.name, spm_field=payload.spm_field.value,
                          service_type=payload.service_type, region_codes=list(payload.region_codes),
                          period_start=payload.period_start, period_end=payload.period_end,
                          budget=_dump(payload.budget), outputs=_dump(payload.outputs), status=payload.status.value,
                          created_by=principal.sub, created_at=now, updated_at=now)
    session.add(programme)
    await session.flush()
    await _record(session, programme, action="registered", version=1, actor=principal.sub, at=now,
                  state=public(programme).model_dump(mode="json"))
    await publish(session, ev.PROGRAMME_REGISTERED, programme_data(programme), subject=str(programme.id))
    return programme


async def load(*, session: AsyncSession, programme_id: uuid.UUID, for_update: bool = False) -> Programme:
    """Loads a programme by its id (404 when there is none), before any access check."""
    programme = await session.get(Programme, programme_id, with_for_update=for_update)
    if programme is None:
        raise ProgrammeNotFound(f"No programme has the id {programme_id}.")
    return programme


async def get(*, session: AsyncSession, principal: Principal, programme: Programme) -> Programme:
    """A programme the caller may read (403 for one outside the caller's fields or region)."""
    await require_reader(session, principal, programme)
    return programme


async def _realised(session: AsyncSession, programme_id: uuid.UUID) -> list[ProgrammeRealisation]:
    rows = await session.execute(select(ProgrammeRealisation).where(ProgrammeRealisation.programme_id == programme_id)
                                 .order_by(col(ProgrammeRealisation.month)))
    return list(rows.scalars().all())


async def update(*, session: AsyncSession, principal: Principal, programme: Programme, payload: ProgrammeUpdate,
                 if_match: str | None, now: datetime) -> Programme:
    """Changes a programme (If-Match required; the row locked): the whole programme after the change must meet
    every rule."""
    await require_writer(session, principal, programme)
    require_if_match(if_match, programme.version)
    changes = payload.model_dump(exclude_unset=True)
    if "spm_field" in changes and principal.role is Role.OPD and payload.spm_field not in principal.fields:
        raise Forbidden(f"The token does not carry the field {changes['spm_field']}.")
    current = ProgrammeCreate.model_construct(
        agency_id=programme.agency_id, name=programme.name, spm_field=SpmField(programme.spm_field),
        service_type=programme.service_type, region_codes=list(programme.region_codes),
        period_start=programme.period_start, period_end=programme.period_end,
        budget=[BudgetLineIn.model_validate(b) for b in programme.budget],
        outputs=[PlannedOutputIn.model_validate(o) for o in programme.outputs],
        status=ev.ProgrammeStatus(programme.status))
    plan = current.model_copy(update={key: getattr(payload, key) for key in changes})
    if plan == current:
        return programme  # nothing changes: no new version, no event
    agency = await session.get(Agency, programme.agency_id)
    assert agency is not None
    await _check(session, agency, plan, await _realised(session, programme.id))
    programme.name, programme.spm_field, programme.service_type = plan.name, plan.spm_field.value, plan.service_type
    programme.region_codes = list(plan.region_codes)
    programme.period_start, programme.period_end = plan.period_start, plan.period_end
    programme.budget, programme.outputs, programme.status = _dump(plan.budget), _dump(plan.outputs), plan.status.value
    programme.version += 1
    programme.updated_at = now
    await session.flush()
    await _record(session, programme, action="updated", version=programme.version, actor=principal.sub, at=now,
                  state=public(programme).model_dump(mode="json"))
    await publish(session, ev.PROGRAMME_UPDATED, programme_data(programme), subject=str(programme.id))
    return programme


async def list_programmes(*, session: AsyncSession, principal: Principal, spm_field: str | None,
                          service_type: str | None, agency_id: uuid.UUID | None, region: str | None,
                          year: int | None, status: str | None, after: tuple[str, uuid.UUID] | None,
                          limit: int) -> list[Programme]:
    """The programmes the caller may read, by filter, in name order (keyset after `after`)."""
    query = readable_statement(principal)
    if spm_field is not None:
        query = query.where(Programme.spm_field == spm_field)
    if service_type is not None:
        query = query.where(Programme.service_type == service_type)
    if agency_id is not None:
        query = query.where(Programme.agency_id == agency_id)
    if region is not None:
        query = query.where(touching(region))
    if year is not None:
        query = query.where(col(Programme.period_start) <= date(year, 12, 31),
                            col(Programme.period_end) >= date(year, 1, 1))
    if status is not None:
        query = query.where(Programme.status == status)
    if after is not None:
        query = query.where(sa.tuple_(Programme.name, Programme.id) > sa.tuple_(*after))
    query = query.order_by(col(Programme.name), col(Programme.id)).limit(limit + 1)
    return list((await session.execute(query)).scalars().all())


async def history(*, session: AsyncSession, principal: Principal, programme: Programme) -> list[ProgrammeChange]:
    """Every change of the programme and of its months, oldest first."""
    await require_reader(session, principal, programme)
    rows = await session.execute(select(ProgrammeChange).where(ProgrammeChange.programme_id == programme.id)
                                 .order_by(col(ProgrammeChange.id)))
    return list(rows.scalars().all())


# --- realisation --------------------------------------------------------------------------------------------------

def _check_realisation(programme: Programme, month: str, payload: RealisationWrite) -> None:
    errors: list[dict[str, Any]] = []
    if not _in_period(month, programme.period_start, programme.period_end):
        errors.append({"field": "month", "message": f"{month} lies outside the programme's period "
                                                    f"{programme.period_start} to {programme.period_end}"})
    planned = {o["code"] for o in programme.outputs}
    sources = {b["source"] for b in programme.budget}
    for i, output in enumerate(payload.outputs):
        if output.code not in planned:
            errors.append({"field": f"outputs.{i}.code", "message": f"{output.code} is not a planned output"})
    errors += [{"field": f"outputs.{i}.code", "message": "named twice"}
               for i in _duplicates([o.code for o in payload.outputs])]
    for i, line in enumerate(payload.spent):
        if line.source.value not in sources:
            errors.append({"field": f"spent.{i}.source",
                           "message": f"{line.source.value} is not a budget source of the programme"})
    errors += [{"field": f"spent.{i}.source", "message": "one line per source"}
               for i in _duplicates([s.source.value for s in payload.spent])]
    if errors:
        raise ValidationFailed("The realisation does not fit the programme.", errors=errors)


async def realise(*, session: AsyncSession, principal: Principal, programme: Programme, month: str,
                  payload: RealisationWrite, if_match: str | None, now: datetime) -> ProgrammeRealisation:
    """Reports (version 1) or corrects (If-Match required) a month's delivered outputs and spending (the programme
    row locked, which serialises two first reports of one month)."""
    await require_writer(session, principal, programme)
    if programme.status == ev.ProgrammeStatus.CANCELLED.value:
        raise Conflict("A cancelled programme reports no realisation.")
    realisation = await session.get(ProgrammeRealisation, (programme.id, month), with_for_update=True)
    if realisation is None:
        check_if_match(if_match, 0)
    else:
        require_if_match(if_match, realisation.version)
    _check_realisation(programme, month, payload)
    outputs, spent = _dump(payload.outputs), _dump(payload.spent)
    if realisation is not None and (realisation.outputs, realisation.spent) == (outputs, spent):
        return realisation  # the same figures again: no new version, no event
    if realisation is None:
        realisation = ProgrammeRealisation(programme_id=programme.id, month=month, version=0,
                                           reported_by=principal.sub)
        session.add(realisation)
    realisation.outputs, realisation.spent = outputs, spent
    realisation.version += 1
    realisation.reported_by = principal.sub
    realisation.updated_at = now
    await session.flush()
    await _record(session, programme, action="realised", month=month, version=realisation.version,
                  actor=principal.sub, at=now, state=realisation_public(realisation).model_dump(mode="json"))
    await publish(session, ev.PROGRAMME_REALISED, realisation_data(programme, realisation), subject=str(programme.id))
    return realisation


async def realisations(*, session: AsyncSession, principal: Principal, programme: Programme) -> Realisations:
    """A programme's reported months, oldest first, with the totals to date against its plan (spending past the
    plan is shown, not refused)."""
    await require_reader(session, principal, programme)
    rows = await _realised(session, programme.id)
    delivered: dict[str, int] = {}
    spent: dict[str, int] = {}
    for r in rows:
        for o in r.outputs:
            delivered[o["code"]] = delivered.get(o["code"], 0) + o["quantity"]
        for line in r.spent:
            spent[line["source"]] = spent.get(line["source"], 0) + line["amount"]
    return Realisations(
        programme_id=programme.id, items=[realisation_public(r) for r in rows],
        outputs=[OutputProgress(code=o["code"], target=o["target"], delivered=delivered.get(o["code"], 0))
                 for o in programme.outputs],
        budget=[BudgetProgress(source=b["source"], planned=b["amount"], spent=spent.get(b["source"], 0),
                               over_budget=spent.get(b["source"], 0) > b["amount"]) for b in programme.budget])
