"""HTTP routes for a household's access log: the entries (JSON, paginated) and the printable report (HTML)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse
from pydantic import AwareDatetime

from services.household.access_log import report as printed
from services.household.access_log import service
from services.household.access_log.schemas import AccessLogEntry
from shared.auth import PrincipalDep
from shared.db import SessionDep
from shared.iso_dates import iso_or_none
from shared.pagination import CursorParam, LimitParam, Page, decode_cursor, page_of, timestamp

router = APIRouter(prefix="/api/v1/households", tags=["households"])

From = Annotated[AwareDatetime | None, iso_or_none,
                 Query(alias="from", description="Entries at or after this time (RFC 3339).")]
To = Annotated[AwareDatetime | None, iso_or_none,
               Query(alias="to", description="Entries before this time (RFC 3339).")]


@router.get("/{household_id}/access-log", response_model=Page[AccessLogEntry],
            summary="Who read this family's data in any service, when and why, newest first (UU PDP right of "
                    "access; admin or the household's kader; the read is audited)")
async def access_log(household_id: uuid.UUID, session: SessionDep, principal: PrincipalDep, limit: LimitParam = 50,
                     cursor: CursorParam = None, since: From = None, until: To = None) -> Any:
    period = service.Period(since, until)
    after = decode_cursor(cursor, timestamp, int)
    household = await service.readable_access_log(session=session, principal=principal, household_id=household_id)
    rows = await service.entries(session=session, principal=principal, household=household, period=period,
                                 after=(after[0], after[1]) if after else None, limit=limit)
    items, next_cursor = page_of(rows, limit, lambda r: (r["at"].isoformat(), r["id"]))
    return {"items": items, "next_cursor": next_cursor}


@router.get("/{household_id}/access-log/report", response_class=HTMLResponse,
            summary="The access log of a period as a printable page in Indonesian, for the family (admin or the "
                    "household's kader; the printing is audited)",
            responses={200: {"content": {"text/html": {}}, "description": "A printable HTML page"}})
async def access_report(household_id: uuid.UUID, session: SessionDep, principal: PrincipalDep,
                        since: From = None, until: To = None) -> HTMLResponse:
    period = service.Period(since, until)
    household = await service.readable_access_log(session=session, principal=principal, household_id=household_id)
    made = await service.report(session=session, principal=principal, household=household, period=period)
    return HTMLResponse(printed.render(made), headers={"Cache-Control": "no-store"})

