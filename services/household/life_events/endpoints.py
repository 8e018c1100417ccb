"""HTTP routes for life events: each translates the request into its use case and the result into a response."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Response

from services.household.access import ReadableHousehold
from services.household.households.schemas import HouseholdPublic, MemberPublic
from services.household.life_events import service
from services.household.life_events.schemas import (
    DeathRecord,
    HouseholdClose,
    HouseholdMerge,
    HouseholdSplit,
    LifeEventPublic,
    MemberMove,
    MemberMoveOut,
)
from shared.auth import PrincipalDep, Writer
from shared.clock import NowDep
from shared.concurrency import IfMatch, etag
from shared.db import SessionDep
from shared.idempotency import IdempotencyKeyHeader, idempotent
from shared.pagination import CursorParam, LimitParam, Page, decode_cursor, page_of, timestamp
from shared.responses import json_response

router = APIRouter(prefix="/api/v1/households", tags=["life events"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    409: {"description": "The member is not active, or the household is closed (or still has members)"},
    412: {"description": "If-Match names an older version"},
}


def _member(view: MemberPublic) -> Response:
    return json_response(view, headers={"ETag": etag(view.version)})


def _household(view: HouseholdPublic, status_code: int = 200) -> Response:
    return json_response(view, status_code,
                         headers={"ETag": etag(view.version), "Location": f"/api/v1/households/{view.id}"})


@router.post("/{household_id}/members/{member_id}/death", response_model=MemberPublic, responses=_ERRORS,
             summary="Record a member's death (honours If-Match)")
async def record_death(household_id: uuid.UUID, member_id: uuid.UUID, payload: DeathRecord, session: SessionDep,
                       principal: Writer, now: NowDep, if_match: IfMatch = None) -> Response:
    return _member(await service.record_death(session=session, principal=principal, household_id=household_id,
                                              member_id=member_id, payload=payload, if_match=if_match, now=now))


@router.post("/{household_id}/members/{member_id}/move", response_model=MemberPublic, responses=_ERRORS,
             summary="Move a member to another known household: a marriage, say (honours If-Match)")
async def move_member(household_id: uuid.UUID, member_id: uuid.UUID, payload: MemberMove, session: SessionDep,
                      principal: Writer, now: NowDep, if_match: IfMatch = None) -> Response:
    return _member(await service.move_member(session=session, principal=principal, household_id=household_id,
                                             member_id=member_id, payload=payload, if_match=if_match, now=now))


@router.post("/{household_id}/members/{member_id}/move-out", response_model=MemberPublic, responses=_ERRORS,
             summary="Record a member moving to an unknown place or out of the area (honours If-Match)")
async def move_out(household_id: uuid.UUID, member_id: uuid.UUID, payload: MemberMoveOut, session: SessionDep,
                   principal: Writer, now: NowDep, if_match: IfMatch = None) -> Response:
    return _member(await service.move_out(session=session, principal=principal, household_id=household_id,
                                          member_id=member_id, payload=payload, if_match=if_match, now=now))


@router.post("/{household_id}/split", status_code=201, response_model=HouseholdPublic,
             responses={**_ERRORS, 409: {"description": "The KK number is taken, or the household is closed"}},
             summary="Split a household: the members listed form a new household with a new KK number")
async def split_household(household_id: uuid.UUID, payload: HouseholdSplit, session: SessionDep, principal: Writer,
                          now: NowDep, if_match: IfMatch = None,
                          idempotency_key: IdempotencyKeyHeader = None) -> Response:
    async def create() -> Response:
        return _household(await service.split(session=session, principal=principal, household_id=household_id,
                                               payload=payload, if_match=if_match, now=now), 201)

    return await idempotent(session, key=idempotency_key, principal=principal,
                            scope=f"POST /households/{household_id}/split", payload=payload, create=create)


@router.post("/{household_id}/merge", response_model=HouseholdPublic, responses=_ERRORS,
             summary="Merge a household into another: its members move there and it closes (honours If-Match)")
async def merge_household(household_id: uuid.UUID, payload: HouseholdMerge, session: SessionDep, principal: Writer,
                          now: NowDep, if_match: IfMatch = None) -> Response:
    return _household(await service.merge(session=session, principal=principal, household_id=household_id,
                                           payload=payload, if_match=if_match, now=now))


@router.post("/{household_id}/close", response_model=HouseholdPublic, responses=_ERRORS,
             summary="Close a household whose members have all died or left (honours If-Match)")
async def close_household(household_id: uuid.UUID, payload: HouseholdClose, session: SessionDep, principal: Writer,
                          now: NowDep, if_match: IfMatch = None) -> Response:
    return _household(await service.close(session=session, principal=principal, household_id=household_id,
                                           payload=payload, if_match=if_match, now=now))


@router.get("/{household_id}/life-events", response_model=Page[LifeEventPublic],
            summary="The household's deaths, moves, departures and closing, oldest first (audited)")
async def life_events(readable: ReadableHousehold, session: SessionDep, principal: PrincipalDep,
                      limit: LimitParam = 50, cursor: CursorParam = None) -> Any:
    after = decode_cursor(cursor, timestamp, uuid.UUID)
    rows = await service.history(session=session, principal=principal, readable=readable, after=after, limit=limit)
    items, next_cursor = page_of(rows, limit, lambda e: (e.recorded_at, e.id))
    return Page(items=[LifeEventPublic.model_validate(e, from_attributes=True) for e in items],
                next_cursor=next_cursor)
