"""HTTP routes for households and their members: each parses the request, calls its use case, renders the result."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from services.household.access import ReadableHousehold
from services.household.households import service
from services.household.households.schemas import (
    HouseholdCreate,
    HouseholdMove,
    HouseholdPublic,
    HouseholdUpdate,
    MemberCreate,
    MemberPublic,
    MemberUpdate,
)
from shared.auth import PrincipalDep, Writer
from shared.clock import TodayDep
from shared.concurrency import IfMatch, etag
from shared.db import SessionDep
from shared.idempotency import IdempotencyKeyHeader, idempotent
from shared.pagination import CursorParam, LimitParam, Page, decode_cursor, page_of
from shared.region_codes import REGION_PREFIX_PATTERN
from shared.responses import json_response

router = APIRouter(prefix="/api/v1/households", tags=["households"])


def _household(view: HouseholdPublic, status_code: int = 200) -> Response:
    return json_response(view, status_code,
                         headers={"ETag": etag(view.version), "Location": f"/api/v1/households/{view.id}"})


def _member(view: MemberPublic, status_code: int = 200) -> Response:
    return json_response(view, status_code, headers={"ETag": etag(view.version)})


@router.post("", status_code=201, response_model=HouseholdPublic, summary="Register a household with its members",
             responses={409: {"description": "KK number or NIK already registered"}})
async def register_household(payload: HouseholdCreate, session: SessionDep, principal: Writer, today: TodayDep,
                             idempotency_key: IdempotencyKeyHeader = None) -> Response:
    async def create() -> Response:
        return _household(await service.register_household(session=session, principal=principal, payload=payload,
                                                           today=today), 201)

    return await idempotent(session, key=idempotency_key, principal=principal, scope="POST /households",
                            payload=payload, create=create)


@router.get("", response_model=Page[HouseholdPublic],
            summary="Search households you may see (by KK, NIK, member name, village, posyandu)")
async def list_households(
    session: SessionDep,
    principal: PrincipalDep,
    today: TodayDep,
    limit: LimitParam = 50,
    cursor: CursorParam = None,
    kk: Annotated[str | None, Query(pattern=r"^[0-9]{16}$")] = None,
    nik: Annotated[str | None, Query(pattern=r"^[0-9]{16}$")] = None,
    name: Annotated[str | None, Query(min_length=2, max_length=100)] = None,
    village: Annotated[str | None, Query(pattern=REGION_PREFIX_PATTERN)] = None,
    posyandu: uuid.UUID | None = None,
) -> Any:
    after = decode_cursor(cursor, uuid.UUID)
    rows = await service.search(session=session, principal=principal, kk=kk, nik=nik, name=name, village=village,
                                posyandu=posyandu, after=after[0] if after else None, limit=limit)
    households, next_cursor = page_of(rows, limit, lambda h: (h.id,))
    items = await service.list_households(session=session, principal=principal, households=households, today=today)
    return Page(items=items, next_cursor=next_cursor)


@router.get("/{household_id}", response_model=HouseholdPublic, summary="A household with its members (audited)")
async def get_household(readable: ReadableHousehold, session: SessionDep, principal: PrincipalDep,
                        today: TodayDep) -> Response:
    return _household(await service.read_household(session=session, principal=principal, readable=readable,
                                                   today=today))


@router.patch("/{household_id}", response_model=HouseholdPublic, summary="Update a household (honours If-Match)")
async def update_household(household_id: uuid.UUID, payload: HouseholdUpdate, session: SessionDep,
                           principal: Writer, today: TodayDep, if_match: IfMatch = None) -> Response:
    return _household(await service.update(session=session, principal=principal, household_id=household_id,
                                           payload=payload, if_match=if_match, today=today))


@router.post("/{household_id}/move", response_model=HouseholdPublic, summary="Move a household to another posyandu")
async def move_household(household_id: uuid.UUID, payload: HouseholdMove, session: SessionDep, principal: Writer,
                         today: TodayDep, if_match: IfMatch = None) -> Response:
    view = await service.move(session=session, principal=principal, household_id=household_id, payload=payload,
                              if_match=if_match, today=today)
    return json_response(view, headers={"ETag": etag(view.version)})


@router.post("/{household_id}/members", status_code=201, response_model=MemberPublic, summary="Add a member")
async def add_member(household_id: uuid.UUID, payload: MemberCreate, session: SessionDep, principal: Writer,
                     today: TodayDep, idempotency_key: IdempotencyKeyHeader = None) -> Response:
    async def create() -> Response:
        return _member(await service.add_member(session=session, principal=principal, household_id=household_id,
                                                payload=payload, today=today), 201)

    return await idempotent(session, key=idempotency_key, principal=principal,
                            scope=f"POST /households/{household_id}/members", payload=payload, create=create)


@router.patch("/{household_id}/members/{member_id}", response_model=MemberPublic, summary="Update a member")
async def update_member(household_id: uuid.UUID, member_id: uuid.UUID, payload: MemberUpdate, session: SessionDep,
                        principal: Writer, today: TodayDep, if_match: IfMatch = None) -> Response:
    return _member(await service.update_member(session=session, principal=principal, household_id=household_id,
                                               member_id=member_id, payload=payload, if_match=if_match, today=today))
