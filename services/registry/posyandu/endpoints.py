"""HTTP routes for posyandu and their cadres."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response

from services.registry.dependencies import PathPosyandu
from services.registry.posyandu import service
from services.registry.posyandu.schemas import (
    CadreCreate,
    CadrePublic,
    CadreUpdate,
    PosyanduCreate,
    PosyanduPublic,
    PosyanduUpdate,
    RegionCount,
)
from services.registry.tables import Cadre, Posyandu
from shared.auth import Principal, PrincipalDep, Role, require_roles
from shared.clock import NowDep
from shared.concurrency import IfMatch, etag
from shared.db import SessionDep
from shared.events.registry import Status
from shared.events.topics import SpmField
from shared.idempotency import IdempotencyKeyHeader, idempotent
from shared.pagination import CursorParam, LimitParam, Page, decode_cursor, page_of
from shared.region_codes import REGION_PREFIX_PATTERN
from shared.responses import json_response

router = APIRouter(prefix="/api/v1/posyandu", tags=["posyandu"])

Manager = Annotated[Principal, Depends(require_roles(Role.ADMIN, Role.PEMBINA))]
RegionQuery = Annotated[str | None, Query(pattern=REGION_PREFIX_PATTERN, description="Region code prefix")]


def _public(p: Posyandu) -> PosyanduPublic:
    return PosyanduPublic.model_validate(p, from_attributes=True)


def _with_etag(p: Posyandu, status_code: int = 200) -> Response:
    return json_response(_public(p), status_code,
                          headers={"ETag": etag(p.version), "Location": f"/api/v1/posyandu/{p.id}"})


def _cadre_response(c: Cadre, status_code: int = 200) -> Response:
    return json_response(CadrePublic.model_validate(c, from_attributes=True), status_code,
                         headers={"ETag": etag(c.version)})


@router.post("", status_code=201, response_model=PosyanduPublic, summary="Register a posyandu",
             responses={409: {"description": "Code taken, or Idempotency-Key reused with another body"}})
async def register_posyandu(payload: PosyanduCreate, session: SessionDep, principal: Manager, now: NowDep,
                            idempotency_key: IdempotencyKeyHeader = None) -> Response:
    async def create() -> Response:
        posyandu = await service.register(session=session, principal=principal, payload=payload, now=now)
        return _with_etag(posyandu, 201)

    return await idempotent(session, key=idempotency_key, principal=principal, scope="POST /posyandu",
                            payload=payload, create=create)


@router.get("", response_model=Page[PosyanduPublic], summary="List posyandu by region, status, field or name")
async def list_posyandu(
    session: SessionDep,
    _: PrincipalDep,
    limit: LimitParam = 50,
    cursor: CursorParam = None,
    region: RegionQuery = None,
    status: Status | None = None,
    field: Annotated[SpmField | None, Query(description="Posyandu with an active cadre for this field")] = None,
    q: Annotated[str | None, Query(min_length=2, max_length=100)] = None,
) -> Any:
    after = decode_cursor(cursor, str, uuid.UUID)
    rows = await service.list_posyandu(session=session, region=region, status=status.value if status else None,
                                       field=field.value if field else None, q=q,
                                       after=(after[0], after[1]) if after else None, limit=limit)
    items, next_cursor = page_of(rows, limit, lambda p: (p.code, p.id))
    return Page(items=[_public(p) for p in items], next_cursor=next_cursor)


@router.get("/counts", response_model=list[RegionCount], summary="Posyandu counted per region one level down")
async def count_posyandu(session: SessionDep, _: PrincipalDep, region: RegionQuery = None,
                         status: Status | None = None, field: SpmField | None = None) -> Any:
    rows = await service.counts_by_region(session=session, region=region, status=status.value if status else None,
                                          field=field.value if field else None)
    return [RegionCount(region_code=code, region_name=name, posyandu=n) for code, name, n in rows]


@router.get("/{posyandu_id}", response_model=PosyanduPublic, summary="Get a posyandu")
async def get_posyandu(_: PrincipalDep, posyandu: PathPosyandu) -> Response:
    # The directory is public to every caller (no personal data).
    return _with_etag(posyandu)


@router.patch("/{posyandu_id}", response_model=PosyanduPublic, summary="Update a posyandu (honours If-Match)",
              responses={412: {"description": "If-Match names an older version"}})
async def update_posyandu(principal: Manager, posyandu: PathPosyandu, payload: PosyanduUpdate, session: SessionDep,
                          now: NowDep, if_match: IfMatch = None) -> Response:
    return _with_etag(await service.update(session=session, principal=principal, posyandu=posyandu, payload=payload,
                                           if_match=if_match, now=now))


@router.post("/{posyandu_id}/deactivate", response_model=PosyanduPublic, summary="Deactivate a posyandu")
async def deactivate_posyandu(principal: Manager, posyandu: PathPosyandu, session: SessionDep, now: NowDep,
                              if_match: IfMatch = None) -> Response:
    return _with_etag(await service.deactivate(session=session, principal=principal, posyandu=posyandu,
                                               if_match=if_match, now=now))


@router.post("/{posyandu_id}/cadres", status_code=201, response_model=CadrePublic,
             summary="Assign a cadre (kader) to a posyandu")
async def assign_cadre(principal: Manager, posyandu: PathPosyandu, payload: CadreCreate, session: SessionDep,
                       now: NowDep, idempotency_key: IdempotencyKeyHeader = None) -> Response:
    async def create() -> Response:
        cadre = await service.assign_cadre(session=session, principal=principal, posyandu=posyandu, payload=payload,
                                           now=now)
        return _cadre_response(cadre, 201)

    return await idempotent(session, key=idempotency_key, principal=principal,
                            scope=f"POST /posyandu/{posyandu.id}/cadres", payload=payload, create=create)


@router.get("/{posyandu_id}/cadres", response_model=list[CadrePublic],
            summary="The cadres of a posyandu (personal data: the read is audited)")
async def list_cadres(principal: PrincipalDep, posyandu: PathPosyandu, session: SessionDep,
                      include_inactive: bool = False) -> Any:
    cadres = await service.list_cadres(session=session, principal=principal, posyandu=posyandu,
                                       include_inactive=include_inactive)
    return [CadrePublic.model_validate(c, from_attributes=True) for c in cadres]


@router.patch("/{posyandu_id}/cadres/{cadre_id}", response_model=CadrePublic, summary="Update a cadre")
async def update_cadre(principal: Manager, posyandu: PathPosyandu, cadre_id: uuid.UUID, payload: CadreUpdate,
                       session: SessionDep, now: NowDep, if_match: IfMatch = None) -> Response:
    return _cadre_response(await service.update_cadre(session=session, principal=principal, posyandu=posyandu,
                                                      cadre_id=cadre_id, payload=payload, if_match=if_match, now=now))


@router.delete("/{posyandu_id}/cadres/{cadre_id}", response_model=CadrePublic,
               summary="End a cadre's assignment (kept as inactive)")
async def unassign_cadre(principal: Manager, posyandu: PathPosyandu, cadre_id: uuid.UUID, session: SessionDep,
                         now: NowDep) -> Response:
    return _cadre_response(await service.unassign_cadre(session=session, principal=principal, posyandu=posyandu,
                                                        cadre_id=cadre_id, now=now))
