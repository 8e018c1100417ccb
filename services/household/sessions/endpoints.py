"""HTTP routes for sessions: open one on an opening day, read and list them, close one."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel

from services.household.sessions import service
from services.household.sessions.service import SessionOpen
from services.household.tables import PosyanduSession
from shared.auth import PrincipalDep
from shared.clock import NowDep
from shared.concurrency import IfMatch, etag
from shared.db import SessionDep
from shared.idempotency import IdempotencyKeyHeader, idempotent
from shared.iso_dates import iso_or_none
from shared.pagination import CursorParam, LimitParam, Page, decode_cursor, page_of
from shared.responses import json_response

router = APIRouter(prefix="/api/v1/sessions", tags=["sessions"])



class SessionPublic(BaseModel):
    id: uuid.UUID
    posyandu_id: uuid.UUID
    village_code: str
    session_date: date
    status: str
    opened_by: str
    opened_at: datetime
    closed_by: str | None
    closed_at: datetime | None
    version: int


def _response(s: PosyanduSession, status_code: int = 200) -> Response:
    return json_response(SessionPublic.model_validate(s, from_attributes=True), status_code,
                         headers={"ETag": etag(s.version), "Location": f"/api/v1/sessions/{s.id}"})


@router.post("", status_code=201, response_model=SessionPublic,
             summary="Open a session: one opening day of the posyandu's schedule (its kader or an admin)",
             responses={403: {"description": "Not the posyandu's kader"},
                        409: {"description": "A session on that day exists, or Idempotency-Key reused"},
                        422: {"description": "Not an opening day of the schedule, in the future, or no such "
                                             "posyandu"}})
async def open_session(payload: SessionOpen, session: SessionDep, principal: PrincipalDep, now: NowDep,
                       idempotency_key: IdempotencyKeyHeader = None) -> Response:
    async def create() -> Response:
        opened = await service.open_session(session=session, principal=principal, payload=payload,
                                            today=now.date())
        return _response(opened, 201)

    return await idempotent(session, key=idempotency_key, principal=principal, scope="POST /sessions",
                            payload=payload, create=create)


@router.get("", response_model=Page[SessionPublic],
            summary="Sessions the caller may read (its kader's posyandu, a pembina's region), newest first")
async def list_sessions(
    session: SessionDep,
    principal: PrincipalDep,
    posyandu_id: uuid.UUID | None = None,
    start: Annotated[date | None, iso_or_none, Query(alias="from", description="First session date (included)")] = None,
    end: Annotated[date | None, iso_or_none, Query(alias="to", description="Last session date (included)")] = None,
    limit: LimitParam = 50,
    cursor: CursorParam = None,
) -> Any:
    after = decode_cursor(cursor, date.fromisoformat, uuid.UUID)
    rows = await service.list_sessions(session=session, principal=principal, posyandu_id=posyandu_id, start=start,
                                       end=end, after=(after[0], after[1]) if after else None, limit=limit)
    items, next_cursor = page_of(rows, limit, lambda s: (s.session_date, s.id))
    return Page(items=[SessionPublic.model_validate(s, from_attributes=True) for s in items], next_cursor=next_cursor)


@router.get("/{session_id}", response_model=SessionPublic, summary="Get a session")
async def get_session(session_id: uuid.UUID, session: SessionDep, principal: PrincipalDep) -> Response:
    return _response(await service.get(session=session, principal=principal, session_id=session_id))


@router.post("/{session_id}/close", response_model=SessionPublic,
             summary="Close a session: it takes no more visits (honours If-Match)",
             responses={403: {"description": "Not the posyandu's kader"},
                        412: {"description": "If-Match names an older version"}})
async def close_session(session_id: uuid.UUID, session: SessionDep, principal: PrincipalDep,
                        if_match: IfMatch = None) -> Response:
    closed = await service.close_session(session=session, principal=principal, session_id=session_id,
                                         if_match=if_match)
    return _response(closed)
