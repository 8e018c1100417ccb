"""Webhook subscriptions of an agency (register, read, rotate, enable, delete), the delivery rows written with every
referral event, the delivery log and replay."""

from __future__ import annotations

import base64
import secrets
import uuid
from datetime import datetime, timedelta
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select
from sqlmodel.sql.expression import SelectOfScalar

from services.referral.referrals.disclosure import Disclosure
from services.referral.settings import ReferralSettings
from services.referral.tables import KnownAgency, Referral, metadata
from services.referral.webhooks import addresses
from services.referral.webhooks.schemas import ReplayBody, SubscriptionCreate
from services.referral.webhooks.tables import WebhookDelivery, WebhookSubscription
from shared.audit import record
from shared.auth import Principal, Role
from shared.errors import Forbidden, NotFound, ValidationFailed
from shared.events.envelope import CloudEvent
from shared.events.topics import SpmField


class SubscriptionNotFound(NotFound):
    pass


def new_secret() -> str:
    """A Standard Webhooks secret: `whsec_` and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def _invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(message, errors=[{"field": field, "message": message}])


async def create(session: AsyncSession, principal: Principal, body: SubscriptionCreate,
                 settings: ReferralSettings, now: datetime) -> WebhookSubscription:
    """Registers a subscription for the caller's agency (an admin names the agency)."""
    if principal.role is Role.OPD:
        if body.agency_id not in (None, principal.agency_id):
            raise Forbidden("An agency registers webhooks for itself only.")
        agency_id = principal.agency_id
    else:
        agency_id = body.agency_id
    if agency_id is None:
        raise _invalid("agency_id", "Name the agency the webhook is for.")
    agency = await session.get(KnownAgency, agency_id)
    if agency is None:
        raise _invalid("agency_id", f"There is no agency {agency_id} known to this service.")
    fields = sorted(agency.spm_fields if principal.role is Role.ADMIN
                    else set(agency.spm_fields) & {f.value for f in principal.fields})
    if not fields:
        raise Forbidden("Your token holds none of your agency's fields.")
    try:
        await addresses.check(body.url, settings)
    except addresses.RefusedUrl as exc:
        raise _invalid("url", f"This URL may not be called: {exc}.") from exc
    row = WebhookSubscription(agency_id=agency_id, spm_fields=fields, url=body.url, event_types=body.event_types,
                              secret=new_secret(), created_by=principal.sub, created_at=now, updated_at=now)
    session.add(row)
    await session.flush()
    await record(session, principal, action="create", resource_type="webhook-subscription", resource_id=str(row.id),
                 purpose=f"webhook of agency {agency_id} to {body.url}")
    return row


def manageable_subscriptions(principal: Principal) -> SelectOfScalar[WebhookSubscription]:
    """The subscriptions the caller may read and manage: the one access rule of the aggregate. An admin: all; an
    agency token: its agency's subscriptions of fields it holds all of."""
    query = select(WebhookSubscription)
    if principal.role is Role.ADMIN:
        return query
    return query.where(col(WebhookSubscription.agency_id) == principal.agency_id,
                       col(WebhookSubscription.spm_fields).op("<@", return_type=sa.Boolean)(
                           sa.literal(sorted(f.value for f in principal.fields), ARRAY(sa.Text))))


async def manageable_subscription(session: AsyncSession, principal: Principal, subscription_id: uuid.UUID, *,
                                  for_update: bool = False) -> WebhookSubscription:
    """Load a subscription the caller may manage (locked when it is about to change it); 404 otherwise."""
    query = manageable_subscriptions(principal).where(col(WebhookSubscription.id) == subscription_id)
    row = (await session.execute(query.with_for_update() if for_update else query)).scalars().first()
    if row is None:
        raise SubscriptionNotFound(f"No webhook subscription {subscription_id} of your agency.")
    return row


async def search(session: AsyncSession, principal: Principal, *, agency_id: uuid.UUID | None,
                 after: tuple[datetime, uuid.UUID] | None, limit: int) -> list[WebhookSubscription]:
    """Lists the subscriptions the caller may manage, newest first."""
    query = manageable_subscriptions(principal)
    if agency_id is not None:
        query = query.where(WebhookSubscription.agency_id == agency_id)
    if after is not None:
        query = query.where(sa.tuple_(col(WebhookSubscription.created_at), col(WebhookSubscription.id))
                            < sa.tuple_(*after))
    query = query.order_by(col(WebhookSubscription.created_at).desc(), col(WebhookSubscription.id).desc())
    return list((await session.execute(query.limit(limit + 1))).scalars().all())


async def rotate(session: AsyncSession, principal: Principal, row: WebhookSubscription, settings: ReferralSettings,
                 now: datetime) -> WebhookSubscription:
    """A new secret; the current one keeps signing (a second signature) for the overlap period."""
    row.previous_secret, row.secret = row.secret, new_secret()
    row.previous_secret_expires_at = now + timedelta(seconds=settings.webhook_secret_overlap_seconds)
    row.updated_at = now
    await record(session, principal, action="rotate-secret", resource_type="webhook-subscription",
                 resource_id=str(row.id), purpose="webhook secret rotation")
    return row


async def enable(session: AsyncSession, principal: Principal, row: WebhookSubscription,
                 now: datetime) -> WebhookSubscription:
    """Resumes a disabled subscription: its pending deliveries go out again, in order."""
    row.status, row.disabled_at, row.disabled_reason, row.consecutive_failures = "active", None, None, 0
    row.updated_at = now
    await record(session, principal, action="enable", resource_type="webhook-subscription", resource_id=str(row.id),
                 purpose="webhook re-enabled")
    return row


async def delete(session: AsyncSession, principal: Principal, row: WebhookSubscription) -> None:
    """Deletes a subscription and its delivery log."""
    await session.execute(sa.delete(WebhookDelivery).where(col(WebhookDelivery.subscription_id) == row.id))
    await session.delete(row)
    await record(session, principal, action="delete", resource_type="webhook-subscription", resource_id=str(row.id),
                 purpose="webhook deleted")


async def deliveries(session: AsyncSession, row: WebhookSubscription, *, status: str | None, after: int | None,
                     limit: int) -> list[WebhookDelivery]:
    """The delivery log of a subscription, newest first."""
    query = select(WebhookDelivery).where(WebhookDelivery.subscription_id == row.id)
    if status is not None:
        query = query.where(WebhookDelivery.status == status)
    if after is not None:
        query = query.where(col(WebhookDelivery.id) < after)
    return list((await session.execute(query.order_by(col(WebhookDelivery.id).desc()).limit(limit + 1)))
                .scalars().all())


async def replay(session: AsyncSession, row: WebhookSubscription, body: ReplayBody, now: datetime) -> int:
    """Sends deliveries again (same id and body), due now; a referral's events still go out in order."""
    condition = (col(WebhookDelivery.id) == body.delivery_id if body.delivery_id is not None
                 else col(WebhookDelivery.created_at) >= body.since)
    result = await session.execute(
        sa.update(WebhookDelivery).where(col(WebhookDelivery.subscription_id) == row.id, condition)
        .values(status="pending", next_attempt_at=now, round_started_at=now, round_attempts=0)
        .returning(col(WebhookDelivery.id)))
    replayed = len(result.all())
    if body.delivery_id is not None and not replayed:
        raise NotFound(f"No delivery {body.delivery_id} of this subscription.")
    return replayed


_subscriptions = metadata.tables[WebhookSubscription.__tablename__]
#: The active subscriptions of the agencies (`agencies`) that want the field (`spm_fields`, one) and the event type
#: (`event_types`, one): built once, bound per event.
_WANTING = (sa.select(_subscriptions.c.id, _subscriptions.c.agency_id, _subscriptions.c.spm_fields)
            .where(_subscriptions.c.agency_id.in_(sa.bindparam("agencies", expanding=True)),
                   _subscriptions.c.status == "active",
                   _subscriptions.c.spm_fields.contains(sa.bindparam("spm_fields")),
                   _subscriptions.c.event_types.contains(sa.bindparam("event_types"))))


def _body(reader: Principal, event: CloudEvent, referral: Referral) -> str:
    """A delivery's body: the event with the referral as the subscription's reader may read it (disclosure.py)."""
    data = Disclosure.of(reader, referral).referral(referral).model_dump(mode="json")
    data["action"] = event.data.get("action")
    data["previous_agency_id"] = event.data.get("previous_agency_id")
    return orjson.dumps({"type": event.type, "timestamp": event.time.isoformat().replace("+00:00", "Z"),
                         "data": data}).decode()


async def queue_deliveries(session: AsyncSession, event: CloudEvent, referral: Referral) -> None:
    """A delivery row per active subscription of the referral's agency (or the agency it escalated to) that wants
    this event, in the transaction of the change (so none is lost). The body holds the referral as that agency may
    read it (disclosure.py's rule)."""
    agencies = {a for a in (referral.agency_id, referral.escalated_to_agency_id) if a is not None}
    if not agencies:
        return
    subscriptions = (await session.execute(_WANTING, {"agencies": list(agencies), "spm_fields": [referral.spm_field],
                                                      "event_types": [event.type]})).all()
    for subscription in subscriptions:
        # The subscription reads as its agency's token of its fields would (disclosure.py).
        reader = Principal(sub=f"webhook:{subscription.id}", role=Role.OPD, agency_id=subscription.agency_id,
                           fields=frozenset(SpmField(f) for f in subscription.spm_fields))
        session.add(WebhookDelivery(subscription_id=subscription.id, event_id=event.id, event_type=event.type,
                                    referral_id=referral.id, body=_body(reader, event, referral),
                                    next_attempt_at=event.time, round_started_at=event.time, created_at=event.time))


_deliveries = metadata.tables[WebhookDelivery.__tablename__]


def deliveries_of_new(created: sa.CTE) -> sa.Insert:
    """`queue_deliveries` of a new referral's first event, as an INSERT for the statement that writes the referral:
    a row per referral `created` returned (none when it wrote none) and per active subscription of its agency
    (`d_agency_id`) that wants the field and the event; binds `deliveries_of_new_parameters`.

    A new referral has not been escalated, so every such subscription reads it as its assigned agency: one body."""
    at = sa.bindparam("d_at", type_=_deliveries.c.created_at.type)
    row = {"subscription_id": _subscriptions.c.id,
           "event_id": sa.bindparam("d_event_id", type_=_deliveries.c.event_id.type),
           "event_type": sa.bindparam("d_event_type", type_=_deliveries.c.event_type.type),
           "referral_id": created.c.id, "body": sa.bindparam("d_body", type_=_deliveries.c.body.type),
           "status": sa.literal("pending"), "round_attempts": sa.literal(0),
           "next_attempt_at": at, "round_started_at": at, "created_at": at}
    wanting = (sa.select(*row.values()).select_from(created)
               .join(_subscriptions, _subscriptions.c.agency_id == sa.bindparam("d_agency_id", type_=sa.Uuid))
               .where(_subscriptions.c.status == "active",
                      _subscriptions.c.spm_fields.contains(sa.bindparam("d_spm_fields")),
                      _subscriptions.c.event_types.contains(sa.bindparam("d_event_types"))))
    return sa.insert(_deliveries).from_select(list(row), wanting, include_defaults=False)


def deliveries_of_new_parameters(event: CloudEvent, referral: Referral) -> dict[str, Any]:
    """The values `deliveries_of_new` binds (no body to make for a referral without an agency: it gets none)."""
    reader = Principal(sub="webhook", role=Role.OPD, agency_id=referral.agency_id,
                       fields=frozenset({SpmField(referral.spm_field)}))
    return {"d_agency_id": referral.agency_id, "d_spm_fields": [referral.spm_field], "d_event_types": [event.type],
            "d_event_id": event.id, "d_event_type": event.type, "d_at": event.time,
            "d_body": None if referral.agency_id is None else _body(reader, event, referral)}
