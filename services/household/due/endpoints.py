"""HTTP route of the due list: JSON pages, or the whole list as CSV for the kader to print or share."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Header, Query, Response
from pydantic import BaseModel

from services.household.due import service
from shared.auth import PrincipalDep
from shared.clock import TodayDep
from shared.db import SessionDep
from shared.pagination import CursorParam, LimitParam, decode_cursor, encode_cursor
from shared.responses import json_response
from shared.spreadsheet import neutralised

router = APIRouter(prefix="/api/v1/posyandu", tags=["due list"])

CSV = "text/csv"


class DueItemPublic(BaseModel):
    service: Literal["immunization", "weighing", "vitamin-a", "antenatal-visit", "screening"]
    vaccine: str | None
    dose: int | None
    status: Literal["due", "overdue"] | None
    since: date | None


class DueEntryPublic(BaseModel):
    member_id: uuid.UUID
    household_id: uuid.UUID
    name: str
    sex: str
    birth_date: date
    age_months: int
    life_cycle_group: str
    pregnant: bool
    address: str | None
    rt: str | None
    rw: str | None
    due: list[DueItemPublic]
    missed_last_session: bool


class DuePage(BaseModel):
    posyandu_id: uuid.UUID
    on: date
    session_id: uuid.UUID | None
    previous_session_id: uuid.UUID | None
    previous_session_date: date | None
    items: list[DueEntryPublic]
    next_cursor: str | None = None


_CSV_COLUMNS = ["name", "sex", "birth_date", "age_months", "life_cycle_group", "pregnant", "address", "rt", "rw",
                "due", "missed_last_session", "member_id", "household_id"]


def _due_text(items: list[dict[str, object]]) -> str:
    parts = []
    for item in items:
        if item["service"] == "immunization":
            parts.append(f"{item['vaccine']}-{item['dose']} ({item['status']})")
        else:
            parts.append(str(item["service"]))
    return "; ".join(parts)


def _csv(found: service.DueList) -> Response:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(_CSV_COLUMNS)
    for entry in found.entries:
        row = service.row_of(entry)
        row["due"] = _due_text(row["due"])
        writer.writerow([neutralised("" if row[c] is None else str(row[c]) if not isinstance(row[c], int | bool)
                                     else row[c]) for c in _CSV_COLUMNS])
    name = f"due-{found.posyandu_id}-{found.on.isoformat()}.csv"
    return Response(buffer.getvalue().encode("utf-8-sig"), media_type=f"{CSV}; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


@router.get("/{posyandu_id}/due", response_model=DuePage,
            summary="Who is due for what at a session, and who missed the last one (kader; audited; CSV too)",
            responses={200: {"content": {CSV: {"schema": {"type": "string"}}},
                             "description": "The due list (JSON pages, or the whole list as CSV)"}})
async def get_due_list(
    posyandu_id: uuid.UUID,
    session: SessionDep,
    principal: PrincipalDep,
    today: TodayDep,
    session_: Annotated[str | None, Query(
        alias="session", min_length=1, max_length=36,
        description="A session id of this posyandu, or an opening day (YYYY-MM-DD); default its next opening day")
    ] = None,
    limit: LimitParam = 50,
    cursor: CursorParam = None,
    format: Annotated[Literal["json", "csv"] | None, Query(description="`csv` for the whole list as CSV")] = None,
    accept: Annotated[str | None, Header(max_length=500)] = None,
) -> Response:
    after = decode_cursor(cursor, uuid.UUID)
    found = await service.due_list(session=session, principal=principal, posyandu_id=posyandu_id, target=session_,
                                     today=today)
    as_csv = format == "csv" or (format is None and CSV in (accept or "").lower())
    if as_csv:
        return _csv(found)
    entries = [e for e in found.entries if after is None or e.member.id > after[0]]
    page, more = entries[:limit], len(entries) > limit
    previous = found.previous_session
    body = DuePage(posyandu_id=posyandu_id, on=found.on, session_id=found.session_id,
                   previous_session_id=previous.id if previous else None,
                   previous_session_date=previous.session_date if previous else None,
                   items=[DueEntryPublic.model_validate(service.row_of(e)) for e in page],
                   next_cursor=encode_cursor(str(page[-1].member.id)) if more else None)
    return json_response(body)
