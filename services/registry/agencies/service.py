"""Agencies (OPD): registration, updates, and the routing rule for (SPM field, village)."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from services.registry.agencies.schemas import AgencyCreate, AgencyUpdate
from services.registry.regions.service import require_village
from services.registry.tables import Agency, Region
from shared.concurrency import check_if_match
from shared.errors import NotFound, ValidationFailed
from shared.events import registry as ev
from shared.events.catalogue import EventType
from shared.events.topics import SpmField
from shared.outbox import publish


class AgencyNotFound(NotFound):
    pass


class NoResponsibleAgency(NotFound):
    title = "No responsible agency"
    slug = "no-responsible-agency"


def agency_data(a: Agency) -> ev.AgencyData:
    return ev.AgencyData(agency_id=a.id, name=a.name, level=ev.AgencyLevel(a.level),
                         jurisdiction_code=a.jurisdiction_code, spm_fields=[SpmField(f) for f in a.spm_fields],
                         status=ev.Status(a.status), version=a.version, kind=ev.AgencyKind(a.kind))


async def _emit(session: AsyncSession, event_type: EventType, agency: Agency) -> None:
    await publish(session, event_type, agency_data(agency), subject=str(agency.id))


async def register(*, session: AsyncSession, payload: AgencyCreate, now: datetime) -> Agency:
    """Registers an agency for its fields in a province or regency/city."""
    expected = 2 if payload.level is ev.AgencyLevel.PROVINCE else 4
    if len(payload.jurisdiction_code) != expected:
        raise ValidationFailed(f"A {payload.level.value}-level agency's jurisdiction is a {expected}-digit code.",
                               errors=[{"field": "jurisdiction_code", "message": f"expected {expected} digits"}])
    region = await session.get(Region, payload.jurisdiction_code)
    if region is None or region.retired_at is not None:
        raise ValidationFailed(f"{payload.jurisdiction_code} is not an active region.",
                               errors=[{"field": "jurisdiction_code", "message": "unknown or retired region"}])
    agency = Agency(**payload.model_dump(exclude={"spm_fields", "kind"}), kind=payload.kind.value,
                    spm_fields=sorted({f.value for f in payload.spm_fields}), created_at=now, updated_at=now)
    session.add(agency)
    await session.flush()
    await _emit(session, ev.AGENCY_REGISTERED, agency)
    return agency


async def get(*, session: AsyncSession, agency_id: uuid.UUID, for_update: bool = False) -> Agency:
    """Gets an agency by its id."""
    agency = await session.get(Agency, agency_id, with_for_update=for_update)
    if agency is None:
        raise AgencyNotFound(f"No agency has the id {agency_id}.")
    return agency


async def update(*, session: AsyncSession, agency: Agency, payload: AgencyUpdate, if_match: str | None,
                 now: datetime) -> Agency:
    """Updates an agency's name, fields or contact (the caller is an admin; the agency row locked)."""
    check_if_match(if_match, agency.version)
    changes = payload.model_dump(exclude_unset=True)
    if "spm_fields" in changes:
        changes["spm_fields"] = sorted({str(f) for f in changes["spm_fields"]})
    if not {k: v for k, v in changes.items() if getattr(agency, k) != v}:
        return agency
    for key, value in changes.items():
        setattr(agency, key, value)
    agency.version += 1
    agency.updated_at = now
    await session.flush()
    await _emit(session, ev.AGENCY_UPDATED, agency)
    return agency


async def deactivate(*, session: AsyncSession, agency: Agency, if_match: str | None, now: datetime) -> Agency:
    """Marks an agency inactive: routing passes it by from now on (the caller is an admin; the agency row locked)."""
    check_if_match(if_match, agency.version)
    if agency.status != "inactive":
        agency.status = "inactive"
        agency.version += 1
        agency.updated_at = now
        await session.flush()
        await _emit(session, ev.AGENCY_DEACTIVATED, agency)
    return agency


async def list_agencies(*, session: AsyncSession, field: str | None, region: str | None, status: str | None,
                        after: tuple[str, uuid.UUID] | None, limit: int) -> list[Agency]:
    """Agencies by field, jurisdiction (those whose jurisdiction covers or lies within `region`) and status."""
    query = select(Agency)
    if field is not None:
        query = query.where(col(Agency.spm_fields).any_() == field)
    if region is not None:
        covers = sa.literal(region).startswith(Agency.jurisdiction_code)
        query = query.where(sa.or_(covers, col(Agency.jurisdiction_code).startswith(region)))
    if status is not None:
        query = query.where(Agency.status == status)
    if after is not None:
        query = query.where(sa.tuple_(Agency.name, Agency.id) > sa.tuple_(*after))
    query = query.order_by(col(Agency.name), col(Agency.id)).limit(limit + 1)
    return list((await session.execute(query)).scalars().all())


async def route(*, session: AsyncSession, field: SpmField, village_code: str) -> Agency:
    """The responsible active agency: the village's regency/city agency for the field, else its province's
    (partner organisations are never responsible: they take no routed referrals)."""
    await require_village(session=session, code=village_code)
    query = (
        select(Agency)
        .where(Agency.status == "active", Agency.kind == ev.AgencyKind.OPD.value,
               col(Agency.spm_fields).any_() == field.value,
               sa.or_(sa.and_(col(Agency.level) == "regency", col(Agency.jurisdiction_code) == village_code[:4]),
                      sa.and_(col(Agency.level) == "province", col(Agency.jurisdiction_code) == village_code[:2])))
        # Regency/city first; among equals the longest-standing, so the answer is stable.
        .order_by(sa.case((col(Agency.level) == "regency", 0), else_=1), col(Agency.created_at), col(Agency.id))
        .limit(1)
    )
    agency = (await session.execute(query)).scalars().first()
    if agency is None:
        raise NoResponsibleAgency(f"No active agency handles {field.value} for village {village_code}.")
    return agency
