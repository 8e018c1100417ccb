"""The SPM service types as the registry serves them, and the agencies' own target figures (sasaran) per region,
year and service type: the override beside the target reporting computes from the posyandu data.

Who may set a figure: an active agency (opd or partner) whose fields hold the service type's field, whose level is
the service type's level (a province agency sets province service types, a regency/city agency regency ones), and
whose jurisdiction holds the region; an admin sets one on behalf of such an agency.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from services.registry.agencies.acting import acting_agency
from services.registry.spm.schemas import ServiceTypePublic, TargetFigurePublic, TargetWrite
from services.registry.tables import Agency, Region, TargetFigure
from shared.auth import Principal
from shared.concurrency import check_if_match, require_if_match
from shared.errors import Forbidden, NotFound, ValidationFailed
from shared.events import programmes as ev
from shared.outbox import publish
from shared.spm import SERVICE_TYPES, ServiceType


def service_types(*, spm_field: str | None, level: str | None) -> list[ServiceTypePublic]:
    """The current list, by field and level, in the file's order."""
    return [ServiceTypePublic(version=t.version, code=t.code, spm_field=t.spm_field, level=t.level, name=t.name,
                              indicators=list(t.indicators), referral_categories=list(t.referral_categories))
            for t in SERVICE_TYPES.values()
            if (spm_field is None or t.spm_field.value == spm_field) and (level is None or t.level.value == level)]


def subject(figure: TargetFigure) -> str:
    """The event key: stable per agency, region, year and service type, so one figure's events stay in order."""
    return f"{figure.agency_id}:{figure.region_code}:{figure.year}:{figure.service_type}"


def public(figure: TargetFigure) -> TargetFigurePublic:
    return TargetFigurePublic.model_validate(figure, from_attributes=True)


def event_data(figure: TargetFigure) -> ev.TargetFigureData:
    return ev.TargetFigureData(agency_id=figure.agency_id, region_code=figure.region_code, year=figure.year,
                               service_type=figure.service_type, target=figure.target, version=figure.version)


async def _authorised_agency(session: AsyncSession, principal: Principal, payload: TargetWrite,
                             service_type: ServiceType, region_code: str) -> Agency:
    # Locked: two first figures of the same key arriving at once are serialised here, not a unique-key error.
    agency = await acting_agency(session, principal, named=payload.agency_id, field=service_type.spm_field,
                                 what="target figures", lock=True)
    if service_type.spm_field.value not in agency.spm_fields:
        raise Forbidden(f"{service_type.code} is a service type of {service_type.spm_field.value}, not a field of "
                        "the agency.")
    if service_type.level.value != agency.level:
        raise Forbidden(f"{service_type.code} is owed by the {service_type.level.value} government; the agency is "
                        f"a {agency.level} agency.")
    if not region_code.startswith(agency.jurisdiction_code):
        raise Forbidden(f"{region_code} lies outside the agency's jurisdiction {agency.jurisdiction_code}.")
    return agency


async def set_figure(*, session: AsyncSession, principal: Principal, region_code: str, year: int,
                     service_type: str, payload: TargetWrite, if_match: str | None, now: datetime) -> TargetFigure:
    """Sets (version 1, or If-Match required once it exists) or withdraws (null) an agency's target figure."""
    kind = SERVICE_TYPES.get(service_type)
    if kind is None:
        raise ValidationFailed(f"{service_type} is not an SPM service type.",
                               errors=[{"field": "service_type", "message": "unknown SPM service type"}])
    region = await session.get(Region, region_code)
    if region is None or region.retired_at is not None:
        raise ValidationFailed(f"{region_code} is not an active region.",
                               errors=[{"field": "region_code", "message": "unknown or retired region"}])
    agency = await _authorised_agency(session, principal, payload, kind, region_code)
    figure = await session.get(TargetFigure, (agency.id, region_code, year, service_type), with_for_update=True)
    if figure is None:
        check_if_match(if_match, 0)
        if payload.target is None:
            raise NotFound("The agency has no figure to withdraw for this region, year and service type.")
        figure = TargetFigure(agency_id=agency.id, region_code=region_code, year=year, service_type=service_type,
                              version=0, updated_by=principal.sub)
        session.add(figure)
    else:
        require_if_match(if_match, figure.version)
        if figure.target == payload.target:
            return figure  # the same figure again: no new version, no event
    figure.target = payload.target
    figure.version += 1
    figure.updated_by = principal.sub
    figure.updated_at = now
    await session.flush()
    await publish(session, ev.TARGET_FIGURE_SET, event_data(figure), subject=subject(figure))
    return figure


async def list_figures(*, session: AsyncSession, region: str | None, year: int | None, service_type: str | None,
                       agency_id: uuid.UUID | None, after: tuple[str, int, str, uuid.UUID] | None,
                       limit: int) -> list[TargetFigure]:
    """Target figures (withdrawn ones too, with a null target) by region prefix, year, service type and agency."""
    query = select(TargetFigure)
    if region is not None:
        query = query.where(col(TargetFigure.region_code).startswith(region))
    if year is not None:
        query = query.where(TargetFigure.year == year)
    if service_type is not None:
        query = query.where(TargetFigure.service_type == service_type)
    if agency_id is not None:
        query = query.where(TargetFigure.agency_id == agency_id)
    key = (TargetFigure.region_code, TargetFigure.year, TargetFigure.service_type, TargetFigure.agency_id)
    if after is not None:
        query = query.where(sa.tuple_(*key) > sa.tuple_(*after))
    query = query.order_by(*(col(c) for c in key)).limit(limit + 1)
    return list((await session.execute(query)).scalars().all())
