"""HTTP routes for visits: record one at a session, list a session's and a member's visits (audited reads)."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from fastapi import APIRouter, Response

from services.household.access import readable_household
from services.household.sessions import service as sessions
from services.household.tables import Member, Visit
from services.household.visits import service
from services.household.visits.schemas import VisitCreate, VisitPublic
from shared.audit import record_read
from shared.auth import PrincipalDep
from shared.db import SessionDep
from shared.errors import NotFound
from shared.idempotency import IdempotencyKeyHeader, idempotent
from shared.pagination import CursorParam, LimitParam, Page, decode_cursor, page_of, timestamp
from shared.responses import json_response

router = APIRouter(tags=["visits"])


def _public(v: Visit) -> VisitPublic:
    return VisitPublic.model_validate(v, from_attributes=True)


@router.post("/api/v1/sessions/{session_id}/visits", status_code=201, response_model=VisitPublic,
             summary="Record a member's visit at an open session, with the services received per life-cycle group",
             responses={403: {"description": "Not the kader of the session's posyandu"},
                        404: {"description": "No such session"},
                        409: {"description": "The session is closed, the member's visit is recorded already, or "
                                             "Idempotency-Key reused"},
                        422: {"description": "A service the member cannot receive (age, sex, pregnancy, month), a "
                                             "measurement impossible for the age, or a member of another posyandu"}})
async def record_visit(session_id: uuid.UUID, payload: VisitCreate, session: SessionDep, principal: PrincipalDep,
                       idempotency_key: IdempotencyKeyHeader = None) -> Response:
    async def create() -> Response:
        visit = await service.record(session=session, principal=principal, session_id=session_id, payload=payload)
        return json_response(_public(visit), 201)

    return await idempotent(session, key=idempotency_key, principal=principal,
                            scope=f"POST /sessions/{session_id}/visits", payload=payload, create=create)


@router.get("/api/v1/sessions/{session_id}/visits", response_model=Page[VisitPublic],
            summary="A session's visits in the order recorded (personal data: the read is audited)")
async def list_session_visits(session_id: uuid.UUID, session: SessionDep, principal: PrincipalDep,
                              limit: LimitParam = 50, cursor: CursorParam = None) -> Any:
    held = await sessions.get(session=session, principal=principal, session_id=session_id)
    after = decode_cursor(cursor, timestamp, uuid.UUID)
    rows = await service.of_session(session, held.id, after=(after[0], after[1]) if after else None, limit=limit)
    items, next_cursor = page_of(rows, limit, lambda v: (v.recorded_at.isoformat(), v.id))
    await record_read(session, principal, resource_type="session.visits", resource_id=str(held.id),
                      purpose="list the visits of a posyandu session")
    return Page(items=[_public(v) for v in items], next_cursor=next_cursor)


@router.get("/api/v1/households/{household_id}/members/{member_id}/visits", response_model=Page[VisitPublic],
            summary="A member's visits, newest first (audited)")
async def list_member_visits(household_id: uuid.UUID, member_id: uuid.UUID, session: SessionDep,
                             principal: PrincipalDep, limit: LimitParam = 50, cursor: CursorParam = None) -> Any:
    household, basis = await readable_household(session, principal, household_id)
    member = await session.get(Member, member_id)
    if member is None or member.household_id != household.id:
        raise NotFound(f"No member {member_id} in household {household_id}.")
    after = decode_cursor(cursor, date.fromisoformat, uuid.UUID)
    rows = await service.of_member(session, member.id, after=(after[0], after[1]) if after else None, limit=limit)
    items, next_cursor = page_of(rows, limit, lambda v: (v.visited_on, v.id))
    await record_read(session, principal, resource_type="visits", resource_id=str(member.id),
                      subject_ref=str(household.id), purpose=basis.purpose)
    return Page(items=[_public(v) for v in items], next_cursor=next_cursor)
