"""HTTP routes for referrals: create, list, read (audited), lifecycle actions, history, the agency inbox, republish."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request, Response

from services.referral.referrals import fhir, reads, service
from services.referral.referrals.dependencies import LockedReferral, ReadableReferral
from services.referral.referrals.disclosure import Disclosure
from services.referral.referrals.lifecycle import Action, Status
from services.referral.referrals.schemas import (
    ActionBody,
    ReferralCreate,
    ReferralDetail,
    ReferralPublic,
    RepublishResult,
    TransitionPublic,
)
from services.referral.tables import Referral
from shared.auth import Admin, Principal, PrincipalDep, Writer
from shared.clock import NowDep
from shared.concurrency import IfMatch, etag
from shared.db import SessionDep
from shared.events.topics import SpmField
from shared.idempotency import IdempotencyKeyHeader, idempotent
from shared.iso_dates import iso_or_none
from shared.pagination import CursorParam, LimitParam, Page, decode_cursor, timestamp
from shared.region_codes import REGION_PREFIX_PATTERN
from shared.responses import json_response

router = APIRouter(prefix="/api/v1/referrals", tags=["referrals"])
inbox_router = APIRouter(prefix="/api/v1/agencies", tags=["referrals"])


def _response(r: Referral, principal: Principal, status_code: int = 200) -> Response:
    return json_response(Disclosure.of(principal, r).referral(r), status_code,
                         headers={"ETag": etag(r.version), "Location": f"/api/v1/referrals/{r.id}"})


@router.post("", status_code=201, response_model=ReferralPublic,
             summary="Create a referral for a household or member of your posyandu")
async def create_referral(payload: ReferralCreate, session: SessionDep, principal: Writer, now: NowDep,
                          idempotency_key: IdempotencyKeyHeader = None) -> Response:
    async def create() -> Response:
        referral = await service.create(session=session, principal=principal, payload=payload, now=now)
        return _response(referral, principal, 201)

    return await idempotent(session, key=idempotency_key, principal=principal, scope="POST /referrals",
                            payload=payload, create=create)


@router.get("", response_model=Page[ReferralPublic],
            summary="Referrals you may see, by field, status, agency, posyandu, region, overdue, period")
async def list_referrals(
    session: SessionDep,
    principal: PrincipalDep,
    now: NowDep,
    limit: LimitParam = 50,
    cursor: CursorParam = None,
    field: SpmField | None = None,
    status: Status | None = None,
    agency: uuid.UUID | None = None,
    posyandu: uuid.UUID | None = None,
    region: Annotated[str | None, Query(pattern=REGION_PREFIX_PATTERN)] = None,
    overdue: bool | None = None,
    unrouted: bool | None = None,
    created_from: Annotated[datetime | None, iso_or_none] = None,
    created_to: Annotated[datetime | None, iso_or_none] = None,
) -> Any:
    filters = reads.Filters(spm_field=field, status=status, agency_id=agency, posyandu_id=posyandu, region=region,
                            overdue=overdue, unrouted=unrouted, created_from=created_from, created_to=created_to)
    return await reads.list_referrals(session=session, principal=principal, filters=filters,
                                      after=decode_cursor(cursor, timestamp, uuid.UUID), limit=limit, now=now)


@inbox_router.get("/{agency_id}/referrals", response_model=Page[ReferralPublic],
                  summary="An agency's inbox: the referrals routed or escalated to it (the agency itself, or admin)")
async def agency_inbox(agency_id: uuid.UUID, session: SessionDep, principal: PrincipalDep, now: NowDep,
                       limit: LimitParam = 50,
                       cursor: CursorParam = None, status: Status | None = None, field: SpmField | None = None,
                       overdue: bool | None = None) -> Any:
    return await reads.agency_inbox(session=session, principal=principal, agency_id=agency_id,
                                    filters=reads.Filters(status=status, spm_field=field, overdue=overdue),
                                    after=decode_cursor(cursor, timestamp, uuid.UUID), limit=limit, now=now)


@router.post("/republish", response_model=RepublishResult,
             summary="Re-publish every open referral of a field as snapshot events (admin; for late-joining agencies)")
async def republish(session: SessionDep, _: Admin, field: SpmField,
                    since: Annotated[datetime | None, iso_or_none] = None) -> Any:
    return RepublishResult(spm_field=field, count=await service.republish(session=session, spm_field=field,
                                                                          since=since))


@router.get("/{referral_id}", response_model=ReferralDetail, responses=fhir.OPENAPI_RESPONSES,
            summary="A referral (audited); for its agency with the member's NIK and name from the household service; "
                    "a FHIR R4 Task with Accept: application/fhir+json")
async def get_referral(referral: ReadableReferral, request: Request, session: SessionDep, principal: PrincipalDep,
                       now: NowDep) -> Response:
    view = await reads.detail(session=session, principal=principal, referral=referral,
                              household_api=request.app.state.household_api,
                              authorization=request.headers["authorization"], now=now)
    headers = {"ETag": etag(view.version), "Vary": "Accept"}
    if fhir.wants_fhir(request.headers.get("accept")):
        return Response(orjson.dumps(fhir.task(view)), media_type=fhir.RESPONSE_MEDIA_TYPE, headers=headers)
    return json_response(view, headers=headers)


@router.get("/{referral_id}/history", response_model=list[TransitionPublic],
            summary="Every transition of a referral: who, when, why")
async def referral_history(referral: ReadableReferral, session: SessionDep, principal: PrincipalDep,
                           now: NowDep) -> Any:
    return await reads.history(session=session, principal=principal, referral=referral, now=now)


@router.post("/{referral_id}/{action}", response_model=ReferralPublic,
             summary="A lifecycle action (honours If-Match; 409 names the current state when it is not allowed)",
             responses={409: {"description": "Illegal transition"}, 412: {"description": "If-Match mismatch"}})
async def act_on_referral(referral: LockedReferral, action: Action, session: SessionDep, principal: PrincipalDep,
                          now: NowDep, body: ActionBody | None = None, if_match: IfMatch = None) -> Response:
    changed = await service.transition(session=session, principal=principal, referral=referral, action=action,
                                       body=body or ActionBody(), if_match=if_match, now=now)
    return _response(changed, principal)
