"""HTTP routes of webhook subscriptions: an agency's own (an opd token), or any agency's for an admin."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Request, Response

from services.referral.settings import ReferralSettings
from services.referral.webhooks import service
from services.referral.webhooks.schemas import (
    DeliveryPublic,
    ReplayBody,
    ReplayResult,
    SubscriptionCreate,
    SubscriptionPublic,
    SubscriptionWithSecret,
    view,
)
from services.referral.webhooks.tables import WebhookSubscription
from shared.auth import Principal, Role, require_roles
from shared.clock import NowDep
from shared.db import SessionDep
from shared.pagination import CursorParam, LimitParam, Page, decode_cursor, page_of, timestamp
from shared.responses import json_response

router = APIRouter(prefix="/api/v1/webhooks/subscriptions", tags=["webhooks"])

Manager = Annotated[Principal, Depends(require_roles(Role.ADMIN, Role.OPD))]
SubscriptionId = Annotated[uuid.UUID, Path()]
_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "No such subscription of your agency"}}

def _settings(request: Request) -> ReferralSettings:
    settings: ReferralSettings = request.state.settings
    return settings

SettingsDep = Annotated[ReferralSettings, Depends(_settings)]


def _load(*, for_update: bool) -> Callable[..., Awaitable[WebhookSubscription]]:
    async def load(subscription_id: SubscriptionId, session: SessionDep, principal: Manager) -> WebhookSubscription:
        return await service.manageable_subscription(session, principal, subscription_id, for_update=for_update)

    return load


#: The subscription of a route's id, if the caller may manage it (404 otherwise); locked for a route that changes it.
ManagedSubscription = Annotated[WebhookSubscription, Depends(_load(for_update=False))]
LockedSubscription = Annotated[WebhookSubscription, Depends(_load(for_update=True))]


def _with_secret(row: WebhookSubscription, status_code: int) -> Response:
    body = SubscriptionWithSecret(**view(row).model_dump(), secret=row.secret)
    return json_response(body, status_code, headers={"Location": f"/api/v1/webhooks/subscriptions/{row.id}"})

@router.post("", status_code=201, response_model=SubscriptionWithSecret,
             summary="Register a webhook for an agency's referrals (the secret is shown once)",
             responses={422: {"description": "URL refused (scheme, or an address that is not public in production)"}})
async def create_subscription(body: SubscriptionCreate, session: SessionDep, principal: Manager,
                              settings: SettingsDep, now: NowDep) -> Response:
    return _with_secret(await service.create(session, principal, body, settings, now), 201)

@router.get("", response_model=Page[SubscriptionPublic], summary="Webhook subscriptions of your agency")
async def list_subscriptions(session: SessionDep, principal: Manager, limit: LimitParam = 50,
                             cursor: CursorParam = None, agency_id: uuid.UUID | None = None) -> Any:
    after = decode_cursor(cursor, timestamp, uuid.UUID)
    rows = await service.search(session, principal, agency_id=agency_id,
                                after=after, limit=limit)
    items, next_cursor = page_of(rows, limit, lambda r: (r.created_at.isoformat(), r.id))
    return Page(items=[view(r) for r in items], next_cursor=next_cursor)

@router.get("/{subscription_id}", response_model=SubscriptionPublic, responses=_NOT_FOUND,
            summary="A webhook subscription (status, failure budget)")
async def get_subscription(subscription: ManagedSubscription) -> Any:
    return view(subscription)

@router.delete("/{subscription_id}", status_code=204, responses=_NOT_FOUND,
               summary="Delete a webhook subscription and its delivery log")
async def delete_subscription(subscription: LockedSubscription, session: SessionDep, principal: Manager) -> Response:
    await service.delete(session, principal, subscription)
    return Response(status_code=204)

@router.post("/{subscription_id}/rotate-secret", response_model=SubscriptionWithSecret, responses=_NOT_FOUND,
             summary="Issue a new secret; the previous one also signs during the overlap period")
async def rotate_secret(subscription: LockedSubscription, session: SessionDep, principal: Manager,
                        settings: SettingsDep, now: NowDep) -> Response:
    return _with_secret(await service.rotate(session, principal, subscription, settings, now), 200)

@router.post("/{subscription_id}/enable", response_model=SubscriptionPublic, responses=_NOT_FOUND,
             summary="Resume a subscription the failure budget disabled")
async def enable_subscription(subscription: LockedSubscription, session: SessionDep, principal: Manager,
                              now: NowDep) -> Any:
    return view(await service.enable(session, principal, subscription, now))

@router.get("/{subscription_id}/deliveries", response_model=Page[DeliveryPublic], responses=_NOT_FOUND,
            summary="The delivery log: every message with its attempts, newest first")
async def list_deliveries(subscription: ManagedSubscription, session: SessionDep, limit: LimitParam = 50,
                          cursor: CursorParam = None,
                          status: Literal["pending", "succeeded", "failed"] | None = None) -> Any:
    after = decode_cursor(cursor, int)
    rows = await service.deliveries(session, subscription, status=status, after=after[0] if after else None,
                                    limit=limit)
    items, next_cursor = page_of(rows, limit, lambda r: (r.id,))
    return Page(items=[DeliveryPublic.model_validate(r) for r in items], next_cursor=next_cursor)

@router.post("/{subscription_id}/replay", response_model=ReplayResult, responses=_NOT_FOUND,
             summary="Send one delivery, or all since a time, again (same webhook-id and body)")
async def replay(subscription: ManagedSubscription, body: ReplayBody, session: SessionDep, now: NowDep) -> Any:
    return ReplayResult(replayed=await service.replay(session, subscription, body, now))
