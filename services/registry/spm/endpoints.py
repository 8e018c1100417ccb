"""HTTP routes for the SPM reference data and the agencies' own target figures."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response

from services.registry.spm import service
from services.registry.spm.schemas import (
    FIRST_YEAR,
    LAST_YEAR,
    ServiceTypes,
    TargetFigurePublic,
    TargetWrite,
)
from shared.auth import PrincipalDep
from shared.clock import NowDep
from shared.concurrency import IfMatch, etag
from shared.db import SessionDep
from shared.events.topics import SpmField
from shared.pagination import CursorParam, LimitParam, Page, decode_cursor, page_of
from shared.region_codes import REGION_PREFIX_PATTERN
from shared.responses import json_response
from shared.spm import CURRENT_VERSION, GovernmentLevel

router = APIRouter(prefix="/api/v1/spm", tags=["spm"])

Year = Annotated[int, Path(ge=FIRST_YEAR, le=LAST_YEAR)]


@router.get("/service-types", response_model=ServiceTypes,
            summary="The official SPM basic service types (PP 2/2018) by field and government level")
async def list_service_types(_: PrincipalDep, spm_field: SpmField | None = None,
                             level: GovernmentLevel | None = None) -> Any:
    return ServiceTypes(version=CURRENT_VERSION, items=service.service_types(
        spm_field=spm_field.value if spm_field else None, level=level.value if level else None))


@router.put("/targets/{region_code}/{year}/{service_type}", response_model=TargetFigurePublic,
            summary="Set or withdraw (null) the agency's own target figure (If-Match once it exists)",
            responses={403: {"description": "Not an agency of the field, level and jurisdiction, or an admin"},
                       404: {"description": "Nothing to withdraw"},
                       412: {"description": "If-Match names an older version"},
                       422: {"description": "Unknown region or service type"},
                       428: {"description": "The figure exists and If-Match is missing"}})
async def put_target(region_code: Annotated[str, Path(pattern=REGION_PREFIX_PATTERN)], year: Year,
                     service_type: Annotated[str, Path(max_length=80)], payload: TargetWrite, session: SessionDep,
                     principal: PrincipalDep, now: NowDep, if_match: IfMatch = None) -> Response:
    figure = await service.set_figure(session=session, principal=principal, region_code=region_code, year=year,
                                      service_type=service_type, payload=payload, if_match=if_match, now=now)
    return json_response(service.public(figure), headers={"ETag": etag(figure.version)})


@router.get("/targets", response_model=Page[TargetFigurePublic],
            summary="The agencies' own target figures by region prefix, year, service type and agency")
async def list_targets(
    session: SessionDep,
    _: PrincipalDep,
    limit: LimitParam = 50,
    cursor: CursorParam = None,
    region: Annotated[str | None, Query(pattern=REGION_PREFIX_PATTERN)] = None,
    year: Annotated[int | None, Query(ge=FIRST_YEAR, le=LAST_YEAR)] = None,
    service_type: Annotated[str | None, Query(max_length=80)] = None,
    agency_id: uuid.UUID | None = None,
) -> Any:
    after = decode_cursor(cursor, str, int, str, uuid.UUID)
    rows = await service.list_figures(session=session, region=region, year=year, service_type=service_type,
                                      agency_id=agency_id,
                                      after=(after[0], after[1], after[2], after[3]) if after else None, limit=limit)
    items, next_cursor = page_of(rows, limit, lambda f: (f.region_code, f.year, f.service_type, f.agency_id))
    return Page(items=[service.public(f) for f in items], next_cursor=next_cursor)
