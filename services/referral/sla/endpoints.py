"""HTTP routes of SLA administration (admin only): overrides, escalation delays, holiday calendars."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Response

from services.referral.sla import admin
from services.referral.sla.schemas import (
    CalendarBody,
    CalendarPublic,
    DelayBody,
    DelayPublic,
    OverrideBody,
    OverridePublic,
)
from services.referral.tables import SlaOverride
from shared.auth import Admin
from shared.categories import Urgency
from shared.clock import NowDep
from shared.concurrency import IfMatch, etag
from shared.db import SessionDep
from shared.idempotency import IdempotencyKeyHeader, idempotent
from shared.pagination import CursorParam, LimitParam, Page, decode_cursor, page_of
from shared.responses import json_response

router = APIRouter(prefix="/api/v1/sla", tags=["sla"])

OverrideId = Annotated[int, Path(ge=1, le=2**31 - 1)]
_PRECONDITION: dict[int | str, dict[str, Any]] = {412: {"description": "If-Match mismatch"},
                                                  404: {"description": "No such override"}}


def _load(*, for_update: bool) -> Callable[..., Awaitable[SlaOverride]]:
    async def load(override_id: OverrideId, session: SessionDep, _: Admin) -> SlaOverride:
        return await admin.get_override(session, override_id, for_update=for_update)

    return load


#: The override of a route's id (404 otherwise), for an admin; locked for a route that changes it.
Override = Annotated[SlaOverride, Depends(_load(for_update=False))]
LockedOverride = Annotated[SlaOverride, Depends(_load(for_update=True))]


def _response(row: SlaOverride, status_code: int = 200) -> Response:
    return json_response(admin.override_view(row), status_code,
                         headers={"ETag": etag(row.version), "Location": f"/api/v1/sla/overrides/{row.id}"})


@router.get("/overrides", response_model=Page[OverridePublic], summary="SLA overrides, by urgency, agency, category")
async def list_overrides(session: SessionDep, _: Admin, limit: LimitParam = 50, cursor: CursorParam = None,
                         urgency: Urgency | None = None, agency: uuid.UUID | None = None,
                         category: Annotated[str | None, Query(max_length=60)] = None) -> Any:
    after = decode_cursor(cursor, int)
    rows = await admin.list_overrides(session, urgency=urgency, agency_id=agency, category=category,
                                      after=after[0] if after else None, limit=limit)
    items, next_cursor = page_of(rows, limit, lambda r: (r.id,))
    return Page(items=[admin.override_view(r) for r in items], next_cursor=next_cursor)


@router.post("/overrides", status_code=201, response_model=OverridePublic,
             summary="Create an SLA override (applies to referrals that reach an agency from now on)",
             responses={409: {"description": "An override of this scope exists"}})
async def create_override(body: OverrideBody, session: SessionDep, principal: Admin, now: NowDep,
                          idempotency_key: IdempotencyKeyHeader = None) -> Response:
    async def create() -> Response:
        return _response(await admin.create_override(session, principal, body, now), 201)

    return await idempotent(session, key=idempotency_key, principal=principal, scope="POST /sla/overrides",
                            payload=body, create=create)


@router.get("/overrides/{override_id}", response_model=OverridePublic, summary="An SLA override (ETag)")
async def get_override(override: Override) -> Response:
    return _response(override)


@router.put("/overrides/{override_id}", response_model=OverridePublic, responses=_PRECONDITION,
            summary="Replace an SLA override (honours If-Match); existing deadlines stay")
async def update_override(override: LockedOverride, body: OverrideBody, session: SessionDep, principal: Admin,
                          now: NowDep, if_match: IfMatch = None) -> Response:
    return _response(await admin.update_override(session, principal, override, body, if_match, now))


@router.delete("/overrides/{override_id}", status_code=204, responses=_PRECONDITION,
               summary="Delete an SLA override (honours If-Match)")
async def delete_override(override: LockedOverride, session: SessionDep, principal: Admin,
                          if_match: IfMatch = None) -> Response:
    await admin.delete_override(session, principal, override, if_match)
    return Response(status_code=204)


@router.get("/escalation-delays", response_model=list[DelayPublic],
            summary="The escalation delay of each urgency (configured, or the default)")
async def list_delays(session: SessionDep, _: Admin) -> Any:
    return await admin.escalation_delays(session)


@router.put("/escalation-delays/{urgency}", response_model=DelayPublic,
            responses={412: {"description": "If-Match mismatch"}},
            summary="Set the escalation delay of an urgency (honours If-Match; the default is version 0)")
async def set_delay(urgency: Urgency, body: DelayBody, session: SessionDep, principal: Admin, now: NowDep,
                    if_match: IfMatch = None) -> Response:
    view = await admin.set_escalation_delay(session, principal, urgency, body, if_match, now)
    return json_response(view, headers={"ETag": etag(view.version)})


@router.get("/holiday-calendars", response_model=list[CalendarPublic],
            summary="Every version of the national holiday calendar, by year")
async def list_calendars(session: SessionDep, _: Admin) -> Any:
    return await admin.calendars(session)


@router.get("/holiday-calendars/{year}", response_model=CalendarPublic,
            summary="A year's holiday calendar: the version in force, or the one asked for")
async def get_calendar(year: Annotated[int, Path(ge=2000, le=2100)], session: SessionDep, _: Admin,
                       version: Annotated[int | None, Query(ge=1, le=10_000)] = None) -> Any:
    return await admin.calendar(session, year, version)


@router.post("/holiday-calendars", status_code=201, response_model=CalendarPublic,
             summary="Add a new version of a year's holiday calendar (in force for deadlines from now on)")
async def add_calendar(body: CalendarBody, session: SessionDep, principal: Admin, now: NowDep,
                       idempotency_key: IdempotencyKeyHeader = None) -> Response:
    async def create() -> Response:
        view = await admin.add_calendar(session, principal, body, now)
        return json_response(view, 201, headers={"Location": f"/api/v1/sla/holiday-calendars/{view.year}"
                                                              f"?version={view.version}"})

    return await idempotent(session, key=idempotency_key, principal=principal, scope="POST /sla/holiday-calendars",
                            payload=body, create=create)
