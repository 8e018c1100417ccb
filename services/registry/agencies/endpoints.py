"""HTTP routes for agencies (OPD) and the routing rule."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from services.registry.agencies import service
from services.registry.agencies.schemas import AgencyCreate, AgencyPublic, AgencyUpdate
from services.registry.dependencies import PathAgency
from services.registry.tables import Agency
from shared.auth import Admin, PrincipalDep
from shared.clock import NowDep
from shared.concurrency import IfMatch, etag
from shared.db import SessionDep
from shared.events.registry import Status
from shared.events.topics import SpmField
from shared.idempotency import IdempotencyKeyHeader, idempotent
from shared.pagination import CursorParam, LimitParam, Page, decode_cursor, page_of
from shared.region_codes import REGION_PREFIX_PATTERN, VILLAGE_CODE_PATTERN
from shared.responses import json_response

router = APIRouter(prefix="/api/v1/agencies", tags=["agencies"])


def _response(agency: Agency, status_code: int = 200) -> Response:
    return json_response(AgencyPublic.model_validate(agency, from_attributes=True), status_code,
                          headers={"ETag": etag(agency.version), "Location": f"/api/v1/agencies/{agency.id}"})


@router.get("/route", response_model=AgencyPublic, summary="The agency responsible for a field in a village",
            responses={404: {"description": "No active agency handles the field there"}})
async def route_agency(
    session: SessionDep,
    _: PrincipalDep,
    field: SpmField,
    village: Annotated[str, Query(pattern=VILLAGE_CODE_PATTERN, description="10-digit village code")],
) -> Response:
    return _response(await service.route(session=session, field=field, village_code=village))


@router.post("", status_code=201, response_model=AgencyPublic, summary="Register an agency (admin)")
async def register_agency(payload: AgencyCreate, session: SessionDep, principal: Admin, now: NowDep,
                          idempotency_key: IdempotencyKeyHeader = None) -> Response:
    async def create() -> Response:
        return _response(await service.register(session=session, payload=payload, now=now), 201)

    return await idempotent(session, key=idempotency_key, principal=principal, scope="POST /agencies",
                            payload=payload, create=create)


@router.get("", response_model=Page[AgencyPublic], summary="List agencies by field, region and status")
async def list_agencies(
    session: SessionDep,
    _: PrincipalDep,
    limit: LimitParam = 50,
    cursor: CursorParam = None,
    field: SpmField | None = None,
    region: Annotated[str | None, Query(pattern=REGION_PREFIX_PATTERN)] = None,
    status: Status | None = None,
) -> Any:
    after = decode_cursor(cursor, str, uuid.UUID)
    rows = await service.list_agencies(session=session, field=field.value if field else None, region=region,
                                       status=status.value if status else None,
                                       after=(after[0], after[1]) if after else None, limit=limit)
    items, next_cursor = page_of(rows, limit, lambda a: (a.name, a.id))
    return Page(items=[AgencyPublic.model_validate(a, from_attributes=True) for a in items],
                next_cursor=next_cursor)


@router.get("/{agency_id}", response_model=AgencyPublic, summary="Get an agency")
async def get_agency(_: PrincipalDep, agency: PathAgency) -> Response:
    # The agency directory is public to every caller.
    return _response(agency)


@router.patch("/{agency_id}", response_model=AgencyPublic, summary="Update an agency (admin; honours If-Match)")
async def update_agency(_: Admin, agency: PathAgency, payload: AgencyUpdate, session: SessionDep, now: NowDep,
                        if_match: IfMatch = None) -> Response:
    return _response(await service.update(session=session, agency=agency, payload=payload, if_match=if_match,
                                          now=now))


@router.post("/{agency_id}/deactivate", response_model=AgencyPublic, summary="Deactivate an agency (admin)")
async def deactivate_agency(_: Admin, agency: PathAgency, session: SessionDep, now: NowDep,
                            if_match: IfMatch = None) -> Response:
    return _response(await service.deactivate(session=session, agency=agency, if_match=if_match, now=now))
