"""The delivery worker: sends due webhook deliveries, signed by the Standard Webhooks specification, retries with
backoff and jitter, keeps each referral's order, and applies the failure budget. One replica sends at a time (a
transaction-level advisory lock per turn, as the SLA sweep)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import zlib
from datetime import datetime, timedelta
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col, select
from standardwebhooks import Webhook

from services.referral.settings import ReferralSettings
from services.referral.webhooks import addresses
from services.referral.webhooks.tables import WebhookDelivery, WebhookSubscription
from shared.audit import record
from shared.auth import Principal, Role
from shared.settings import ServiceSettings

log = logging.getLogger(__name__)

_LOCK = zlib.crc32(b"referral-webhook-sender")
_SYSTEM = Principal(sub="system", role=Role.SERVICE)

#: The due head of each (subscription, referral) queue: no earlier pending delivery of the same referral, so a
#: referral's next event waits until the previous one succeeded or was given up.
_DUE = sa.text("""
    SELECT d.id FROM webhook_deliveries d JOIN webhook_subscriptions s ON s.id = d.subscription_id
    WHERE d.status = 'pending' AND d.next_attempt_at <= :now AND s.status = 'active'
      AND NOT EXISTS (SELECT 1 FROM webhook_deliveries e WHERE e.subscription_id = d.subscription_id
                      AND e.referral_id = d.referral_id AND e.status = 'pending' AND e.id < d.id)
    ORDER BY d.next_attempt_at, d.id LIMIT :limit""")


def signatures(subscription: WebhookSubscription, msg_id: str, at: datetime, body: str) -> str:
    """`v1,<sig>` with the current secret, and with the previous one during the overlap (space-separated)."""
    secrets = [subscription.secret]
    if subscription.previous_secret and subscription.previous_secret_expires_at and \
            subscription.previous_secret_expires_at > at:
        secrets.append(subscription.previous_secret)
    return " ".join(Webhook(secret).sign(msg_id, at, body) for secret in secrets)


async def _attempt(client: httpx.AsyncClient, settings: ReferralSettings, subscription: WebhookSubscription,
                   delivery: WebhookDelivery) -> dict[str, Any]:
    """One try: the result for the log (`status_code` 2xx is a success; else `error` or a failing status)."""
    at = settings.clock()
    started = time.perf_counter()
    entry: dict[str, Any] = {"at": at.isoformat()}
    try:
        await addresses.check(subscription.url, settings)  # DNS may have changed since registration
        headers = {"content-type": "application/json", "user-agent": "posyandu-referral-webhooks/1",
                   "webhook-id": str(delivery.event_id), "webhook-timestamp": str(int(at.timestamp())),
                   "webhook-signature": signatures(subscription, str(delivery.event_id), at, delivery.body)}
        response = await client.post(subscription.url, content=delivery.body.encode(), headers=headers)
        entry["status_code"] = response.status_code
    except addresses.RefusedUrl as exc:
        entry["error"] = f"refused: {exc}"
    except httpx.HTTPError as exc:
        entry["error"] = f"{type(exc).__name__}: {exc}"[:300]
    entry["duration_ms"] = round((time.perf_counter() - started) * 1000, 1)
    return entry


async def _disable(session: AsyncSession, subscription: WebhookSubscription, reason: str, now: datetime) -> None:
    """The failure budget is spent: the subscription stops, says why, and the audit log tells the admin."""
    if subscription.status != "active":
        return
    subscription.status, subscription.disabled_at, subscription.disabled_reason = "disabled", now, reason
    await record(session, _SYSTEM, action="disable", resource_type="webhook-subscription",
                 resource_id=str(subscription.id), purpose=reason[:300])
    log.warning("webhook subscription disabled", extra={"subscription_id": str(subscription.id), "reason": reason})


async def _settle(session: AsyncSession, settings: ReferralSettings, subscription: WebhookSubscription,
                  delivery: WebhookDelivery, entry: dict[str, Any]) -> None:
    now = settings.clock()
    delivery.attempts = [*delivery.attempts, entry]
    delivery.round_attempts += 1
    if 200 <= entry.get("status_code", 0) < 300:
        delivery.status, delivery.succeeded_at, delivery.next_attempt_at = "succeeded", now, None
        subscription.consecutive_failures = 0
        return
    subscription.consecutive_failures += 1
    schedule = settings.webhook_retry_schedule_seconds
    if delivery.round_attempts > len(schedule):
        delivery.status, delivery.next_attempt_at = "failed", None
        hours = (now - delivery.round_started_at) / timedelta(hours=1)
        await _disable(session, subscription, f"every attempt of message {delivery.event_id} failed "
                                              f"({delivery.round_attempts} over {hours:.1f} h)", now)
        return
    delay = schedule[delivery.round_attempts - 1] * (1 + random.uniform(0, settings.webhook_retry_jitter))
    delivery.next_attempt_at = now + timedelta(seconds=delay)
    if subscription.consecutive_failures >= settings.webhook_max_consecutive_failures:
        await _disable(session, subscription, f"{subscription.consecutive_failures} failed attempts in a row", now)


async def send_due(session: AsyncSession, settings: ReferralSettings, client: httpx.AsyncClient) -> int:
    """Sends the due deliveries (in the caller's transaction, which holds the sender's lock); how many were tried."""
    ids = list((await session.execute(_DUE, {"limit": settings.webhook_batch_size, "now": settings.clock()})).scalars())
    if not ids:
        return 0
    joined = select(WebhookDelivery, WebhookSubscription).join(
        WebhookSubscription, col(WebhookSubscription.id) == col(WebhookDelivery.subscription_id))
    rows = (await session.execute(joined.where(col(WebhookDelivery.id).in_(ids))
                                  .order_by(col(WebhookDelivery.id)))).all()
    entries = await asyncio.gather(*(_attempt(client, settings, sub, delivery) for delivery, sub in rows))
    for (delivery, subscription), entry in zip(rows, entries, strict=True):
        await _settle(session, settings, subscription, delivery, entry)
    return len(rows)


async def webhook_loop(settings: ServiceSettings, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """The background job: send what is due, again at once while there was some, else after the poll interval."""
    assert isinstance(settings, ReferralSettings)
    async with httpx.AsyncClient(timeout=settings.webhook_timeout_seconds, follow_redirects=False,
                                 trust_env=False) as client:
        while True:
            sent = 0
            try:
                async with sessionmaker() as session, session.begin():
                    if await session.scalar(sa.select(sa.func.pg_try_advisory_xact_lock(_LOCK))):
                        sent = await send_due(session, settings, client)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("webhook delivery turn failed; retrying", extra={"error": repr(exc)})
            if not sent:
                with contextlib.suppress(TimeoutError):
                    await asyncio.sleep(settings.webhook_poll_interval_seconds)
