"""HTTP routes for a posyandu's opening days: its schedule (read, replace) and the dates of a range."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from services.registry.dependencies import PathPosyandu
from services.registry.schedule import service
from services.registry.schedule.schemas import (
    FIRST_DATE,
    LAST_DATE,
    OpeningDays,
    SchedulePublic,
    ScheduleWrite,
)
from shared.auth import PrincipalDep
from shared.clock import NowDep
from shared.concurrency import IfMatch, etag
from shared.db import SessionDep
from shared.iso_dates import iso_or_none
from shared.responses import json_response

router = APIRouter(prefix="/api/v1/posyandu/{posyandu_id}", tags=["opening days"])



def _response(schedule: SchedulePublic) -> Response:
    return json_response(schedule, headers={"ETag": etag(schedule.version)})


@router.get("/schedule", response_model=SchedulePublic, summary="A posyandu's opening-day schedule")
async def get_schedule(_: PrincipalDep, posyandu: PathPosyandu, session: SessionDep) -> Response:
    return _response(await service.get(session=session, posyandu=posyandu))


@router.put("/schedule", response_model=SchedulePublic,
            summary="Replace a posyandu's schedule: monthly rule, extra, moved and cancelled days (honours If-Match)",
            responses={403: {"description": "Not the posyandu's kader, its pembina or an admin"},
                       409: {"description": "The posyandu is inactive"},
                       412: {"description": "If-Match names an older version"},
                       422: {"description": "An exception does not fit the rule, or a date is named twice"}})
async def put_schedule(principal: PrincipalDep, posyandu: PathPosyandu, payload: ScheduleWrite, session: SessionDep,
                       now: NowDep, if_match: IfMatch = None) -> Response:
    return _response(await service.write(session=session, principal=principal, posyandu=posyandu, payload=payload,
                                         if_match=if_match, now=now))


@router.get("/opening-days", response_model=OpeningDays,
            summary="The concrete opening days in a date range (at most two years), from the rule and exceptions")
async def list_opening_days(
    _: PrincipalDep,
    posyandu: PathPosyandu,
    session: SessionDep,
    start: Annotated[date, iso_or_none,
                     Query(alias="from", ge=FIRST_DATE, le=LAST_DATE, description="First date (included)")],
    end: Annotated[date | None, iso_or_none, Query(alias="to", le=LAST_DATE,
                                      description="Last date (included); default: 3 months after `from`")] = None,
) -> Any:
    return await service.opening_days(session=session, posyandu=posyandu, start=start, end=end)
