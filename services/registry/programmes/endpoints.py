"""HTTP routes for programmes: register, list, read, change (If-Match), history, and monthly realisation."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response

from services.registry.dependencies import PathProgramme
from services.registry.programmes import service
from services.registry.programmes.schemas import (
    FIRST_DATE,
    LAST_DATE,
    ProgrammeChangePublic,
    ProgrammeCreate,
    ProgrammePublic,
    ProgrammeUpdate,
    RealisationPublic,
    Realisations,
    RealisationWrite,
)
from services.registry.tables import Programme, ProgrammeRealisation
from shared.auth import PrincipalDep
from shared.clock import NowDep
from shared.concurrency import IfMatch, etag
from shared.db import SessionDep
from shared.events.programmes import MONTH_PATTERN, ProgrammeStatus
from shared.events.topics import SpmField
from shared.idempotency import IdempotencyKeyHeader, idempotent
from shared.pagination import CursorParam, LimitParam, Page, decode_cursor, page_of
from shared.region_codes import REGION_PREFIX_PATTERN
from shared.responses import json_response

router = APIRouter(prefix="/api/v1/programmes", tags=["programmes"])

MonthPath = Annotated[str, Path(pattern=MONTH_PATTERN, description="The month, YYYY-MM")]
WRITE_ERRORS: dict[int | str, dict[str, Any]] = {
    403: {"description": "Not the programme's own agency (in its field) or an admin"},
    412: {"description": "If-Match names an older version"},
    422: {"description": "A rule is not met (each problem named in `errors`)"},
}


def _response(programme: Programme, status_code: int = 200) -> Response:
    return json_response(service.public(programme), status_code,
                         headers={"ETag": etag(programme.version), "Location": f"/api/v1/programmes/{programme.id}"})


@router.post("", status_code=201, response_model=ProgrammePublic,
             summary="Register a programme (an agency for itself; an admin for the agency it names)",
             responses=WRITE_ERRORS)
async def register_programme(payload: ProgrammeCreate, session: SessionDep, principal: PrincipalDep, now: NowDep,
                             idempotency_key: IdempotencyKeyHeader = None) -> Response:
    async def create() -> Response:
        return _response(await service.register(session=session, principal=principal, payload=payload, now=now), 201)

    return await idempotent(session, key=idempotency_key, principal=principal, scope="POST /programmes",
                            payload=payload, create=create)


@router.get("", response_model=Page[ProgrammePublic],
            summary="List the programmes the caller may read, by field, service type, agency, region, year, status")
async def list_programmes(
    session: SessionDep,
    principal: PrincipalDep,
    limit: LimitParam = 50,
    cursor: CursorParam = None,
    spm_field: SpmField | None = None,
    service_type: Annotated[str | None, Query(max_length=80)] = None,
    agency_id: uuid.UUID | None = None,
    region: Annotated[str | None, Query(pattern=REGION_PREFIX_PATTERN,
                                        description="Programmes serving a region within or around this prefix")] = None,
    year: Annotated[int | None, Query(ge=FIRST_DATE.year, le=LAST_DATE.year,
                                      description="Programmes whose period meets this year")] = None,
    status: ProgrammeStatus | None = None,
) -> Any:
    after = decode_cursor(cursor, str, uuid.UUID)
    rows = await service.list_programmes(
        session=session, principal=principal, spm_field=spm_field.value if spm_field else None,
        service_type=service_type, agency_id=agency_id, region=region, year=year,
        status=status.value if status else None, after=(after[0], after[1]) if after else None, limit=limit)
    items, next_cursor = page_of(rows, limit, lambda p: (p.name, p.id))
    return Page(items=[service.public(p) for p in items], next_cursor=next_cursor)


@router.get("/{programme_id}", response_model=ProgrammePublic, summary="Get a programme",
            responses={403: {"description": "Outside the caller's fields or region"}})
async def get_programme(principal: PrincipalDep, programme: PathProgramme, session: SessionDep) -> Response:
    return _response(await service.get(session=session, principal=principal, programme=programme))


@router.patch("/{programme_id}", response_model=ProgrammePublic,
              summary="Change a programme (its own agency or an admin; If-Match required)",
              responses={**WRITE_ERRORS, 428: {"description": "If-Match is missing"}})
async def update_programme(principal: PrincipalDep, programme: PathProgramme, payload: ProgrammeUpdate,
                           session: SessionDep, now: NowDep, if_match: IfMatch = None) -> Response:
    return _response(await service.update(session=session, principal=principal, programme=programme,
                                          payload=payload, if_match=if_match, now=now))


@router.get("/{programme_id}/history", response_model=list[ProgrammeChangePublic],
            summary="Every change of a programme and of its months: who, when, the version, the state after")
async def programme_history(principal: PrincipalDep, programme: PathProgramme, session: SessionDep) -> Any:
    rows = await service.history(session=session, principal=principal, programme=programme)
    return [ProgrammeChangePublic.model_validate(r, from_attributes=True) for r in rows]


def _realisation(realisation: ProgrammeRealisation) -> Response:
    return json_response(service.realisation_public(realisation), headers={"ETag": etag(realisation.version)})


@router.put("/{programme_id}/realisations/{month}", response_model=RealisationPublic,
            summary="Report a month's delivered outputs and spending (a correction needs the month's If-Match)",
            responses={**WRITE_ERRORS, 409: {"description": "The programme is cancelled"},
                       428: {"description": "The month is reported already and If-Match is missing"}})
async def put_realisation(principal: PrincipalDep, programme: PathProgramme, month: MonthPath,
                          payload: RealisationWrite, session: SessionDep, now: NowDep,
                          if_match: IfMatch = None) -> Response:
    return _realisation(await service.realise(session=session, principal=principal, programme=programme,
                                              month=month, payload=payload, if_match=if_match, now=now))


@router.get("/{programme_id}/realisations", response_model=Realisations,
            summary="A programme's monthly realisation, with delivered outputs and spending to date against the plan")
async def list_realisations(principal: PrincipalDep, programme: PathProgramme, session: SessionDep) -> Any:
    return await service.realisations(session=session, principal=principal, programme=programme)
