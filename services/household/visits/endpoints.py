"""HTTP routes for visits: record one at a session, list a session's and a member's visits (audited reads)."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Response

from services.household.tables import Visit
from services.household.visits import service
from services.household.visits.schemas import VisitCreate, VisitPublic
from shared.auth import PrincipalDep
from shared.db import SessionDep
from shared.idempotency import IdempotencyKeyHeader, idempotent
from shared.pagination import CursorParam, LimitParam, Page
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
    items, next_cursor = await service.session_visits(session=session, principal=principal, session_id=session_id,
                                                      cursor=cursor, limit=limit)
    return Page(items=[_public(v) for v in items], next_cursor=next_cursor)


@router.get("/api/v1/households/{household_id}/members/{member_id}/visits", response_model=Page[VisitPublic],
            summary="A member's visits, newest first (audited)")
async def list_member_visits(household_id: uuid.UUID, member_id: uuid.UUID, session: SessionDep,
                             principal: PrincipalDep, limit: LimitParam = 50, cursor: CursorParam = None) -> Any:
    items, next_cursor = await service.member_visits(session=session, principal=principal,
                                                     household_id=household_id, member_id=member_id, cursor=cursor,
                                                     limit=limit)
    return Page(items=[_public(v) for v in items], next_cursor=next_cursor)
