"""The webhooks read "now" from the service's clock (settings.clock), as the deadlines and the sweep do: a
subscription's times, its secret's overlap, a replay, and the delivery worker's attempts, retries and due check."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import orjson
import pytest
import sqlalchemy as sa
from sqlmodel import col

from services.referral.settings import ReferralSettings
from services.referral.tests import kerinci
from services.referral.webhooks import delivery
from services.referral.webhooks.tables import WebhookDelivery
from shared.db import create_engine, create_sessionmaker
from tests.support import tokens
from tests.support.clock import set_clock
from tests.support.waiting import eventually


@pytest.fixture
def clock(referral_settings: ReferralSettings) -> Iterator[list[datetime]]:
    """The service's clock, an hour ahead of the wall clock until the test moves it: `clock[0] = ...`."""
    with set_clock(referral_settings, datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)) as now:
        yield now


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def test_webhook_times_come_from_the_service_clock(
        referral: httpx.AsyncClient, referral_db: asyncpg.Connection, referral_settings: ReferralSettings,
        clock: list[datetime]) -> None:
    agency = await kerinci.agency(referral_db, "Dinkes Kerinci", "1501", ["kesehatan"])
    manager = tokens.opd(agency, ["kesehatan"])
    created = await referral.post("/api/v1/webhooks/subscriptions", headers=manager, json={
        "url": "http://127.0.0.1:9/hook", "event_types": ["posyandu.referral.created.v1"]})
    assert created.status_code == 201, created.text
    subscription = created.json()
    url = f"/api/v1/webhooks/subscriptions/{subscription['id']}"
    try:
        assert _at(subscription["created_at"]) == clock[0]
        home = await kerinci.home(referral_db, kerinci.KERINCI)
        made = await referral.post("/api/v1/referrals", json=kerinci.referral_body(home),
                                   headers=tokens.kader([home.posyandu_id]))
        assert made.status_code == 201, made.text

        # The worker finds the delivery due by the clock, tries it at the clock's time and retries after it.
        async def tried() -> dict[str, Any] | None:
            row = await referral_db.fetchrow(
                "SELECT attempts, next_attempt_at FROM webhook_deliveries WHERE subscription_id = $1 AND "
                "referral_id = $2", uuid.UUID(subscription["id"]), uuid.UUID(made.json()["id"]))
            return dict(row) if row is not None and orjson.loads(row["attempts"]) else None

        first_try = await eventually(tried, "the worker to try the delivery")
        attempt = orjson.loads(first_try["attempts"])[0]
        assert _at(attempt["at"]) == clock[0] and attempt.get("error"), attempt
        first_retry = referral_settings.webhook_retry_schedule_seconds[0]
        assert clock[0] + timedelta(seconds=first_retry) <= first_try["next_attempt_at"] <= clock[0] + timedelta(
            seconds=first_retry * (1 + referral_settings.webhook_retry_jitter))

        clock[0] += timedelta(minutes=1)
        replayed = await referral.post(f"{url}/replay", headers=manager, json={"since": "2026-01-01T00:00:00Z"})
        assert replayed.status_code == 200 and replayed.json()["replayed"] == 1, replayed.text
        assert await referral_db.fetchval("SELECT round_started_at FROM webhook_deliveries WHERE subscription_id = $1",
                                          uuid.UUID(subscription["id"])) == clock[0]
        rotated = await referral.post(f"{url}/rotate-secret", headers=manager)
        assert rotated.status_code == 200, rotated.text
        assert _at(rotated.json()["previous_secret_expires_at"]) == clock[0] + timedelta(
            seconds=referral_settings.webhook_secret_overlap_seconds)
        enabled = await referral.post(f"{url}/enable", headers=manager)
        assert enabled.status_code == 200 and _at(enabled.json()["updated_at"]) == clock[0], enabled.text
    finally:
        assert (await referral.delete(url, headers=manager)).status_code == 204


async def test_a_delivery_is_due_by_the_clock(referral: httpx.AsyncClient, referral_db: asyncpg.Connection,
                                              referral_settings: ReferralSettings, clock: list[datetime]) -> None:
    agency = await kerinci.agency(referral_db, "Dinkes Merangin", "1502", ["kesehatan"])
    manager = tokens.opd(agency, ["kesehatan"])
    created = await referral.post("/api/v1/webhooks/subscriptions", headers=manager, json={
        "url": "http://127.0.0.1:9/hook", "event_types": ["posyandu.referral.created.v1"]})
    assert created.status_code == 201, created.text
    url = f"/api/v1/webhooks/subscriptions/{created.json()['id']}"
    engine = create_engine(referral_settings)
    maker = create_sessionmaker(engine)
    settings = referral_settings.model_copy(update={"webhook_batch_size": 1000})

    async def attempts_after_a_turn() -> list[Any]:
        """One turn of the sender, run here: the service's own worker waits while this holds the sender's lock. It
        commits (no rolled-back session): the test then deletes the subscription through the API, which would wait
        for the delivery rows the turn updated."""
        async with maker() as session, session.begin(), httpx.AsyncClient(timeout=5) as client:
            await session.execute(sa.select(sa.func.pg_advisory_xact_lock(delivery._LOCK)))
            await delivery.send_due(session, settings, client)
            row = await session.scalar(sa.select(WebhookDelivery).where(
                col(WebhookDelivery.subscription_id) == uuid.UUID(created.json()["id"])))
            assert row is not None
            return list(row.attempts)

    try:
        # A day behind the wall clock: the new referral's delivery (due at its event's time) is not due yet.
        clock[0] = datetime.now(UTC) - timedelta(days=1)
        home = await kerinci.home(referral_db, kerinci.MERANGIN)
        made = await referral.post("/api/v1/referrals", json=kerinci.referral_body(home),
                                   headers=tokens.kader([home.posyandu_id]))
        assert made.status_code == 201, made.text
        assert await attempts_after_a_turn() == []
        clock[0] = datetime.now(UTC) + timedelta(minutes=1)
        assert [_at(a["at"]) for a in await attempts_after_a_turn()] == [clock[0]]
    finally:
        await engine.dispose()
        assert (await referral.delete(url, headers=manager)).status_code == 204
