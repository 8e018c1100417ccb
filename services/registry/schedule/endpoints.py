"""HTTP routes for a posyandu's opening days: its schedule (read, replace) and the dates of a range."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from services.registry.schedule import service
from services.registry.schedule.schemas import (
    FIRST_DATE,
    LAST_DATE,
    MAX_RANGE_DAYS,
    OpeningDays,
    SchedulePublic,
    ScheduleWrite,
)
from shared.auth import PrincipalDep
from shared.clock import NowDep
from shared.concurrency import IfMatch, etag
from shared.db import SessionDep
from shared.errors import ValidationFailed
from shared.iso_dates import iso_or_none
from shared.responses import json_response

router = APIRouter(prefix="/api/v1/posyandu/{posyandu_id}", tags=["opening days"])



def _response(schedule: SchedulePublic) -> Response:
    return json_response(schedule, headers={"ETag": etag(schedule.version)})


@router.get("/schedule", response_model=SchedulePublic, summary="A posyandu's opening-day schedule")
async def get_schedule(posyandu_id: uuid.UUID, session: SessionDep, _: PrincipalDep) -> Response:
    return _response(await service.get(session=session, posyandu_id=posyandu_id))


@router.put("/schedule", response_model=SchedulePublic,
            summary="Replace a posyandu's schedule: monthly rule, extra, moved and cancelled days (honours If-Match)",
            responses={403: {"description": "Not the posyandu's kader, its pembina or an admin"},
                       409: {"description": "The posyandu is inactive"},
                       412: {"description": "If-Match names an older version"},
                       422: {"description": "An exception does not fit the rule, or a date is named twice"}})
async def put_schedule(posyandu_id: uuid.UUID, payload: ScheduleWrite, session: SessionDep, principal: PrincipalDep,
                       now: NowDep, if_match: IfMatch = None) -> Response:
    schedule = await service.write(session=session, principal=principal, posyandu_id=posyandu_id, payload=payload,
                                   if_match=if_match, today=now.date())
    return _response(schedule)


@router.get("/opening-days", response_model=OpeningDays,
            summary="The concrete opening days in a date range (at most two years), from the rule and exceptions")
async def list_opening_days(
    posyandu_id: uuid.UUID,
    session: SessionDep,
    _: PrincipalDep,
    start: Annotated[date, iso_or_none,
                     Query(alias="from", ge=FIRST_DATE, le=LAST_DATE, description="First date (included)")],
    end: Annotated[date | None, iso_or_none, Query(alias="to", le=LAST_DATE,
                                      description="Last date (included); default: 3 months after `from`")] = None,
) -> Any:
    end = end or start + timedelta(days=91)
    if end < start or (end - start).days > MAX_RANGE_DAYS:
        raise ValidationFailed(f"`to` must be on or after `from` and at most {MAX_RANGE_DAYS} days later.",
                               errors=[{"field": "to", "message": "outside the allowed range"}])
    items = await service.opening_days(session=session, posyandu_id=posyandu_id, start=start, end=end)
    return OpeningDays(posyandu_id=posyandu_id, start=start, end=end, items=items)
