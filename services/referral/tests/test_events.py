"""The AsyncAPI document, re-publishing for late-joining agencies, and a restart that loses and re-sends nothing."""

from __future__ import annotations

import json
from pathlib import Path

import asyncpg
import httpx
from asgi_lifespan import LifespanManager

from services.referral.app import asyncapi, create_app
from services.referral.settings import ReferralSettings
from services.referral.tests.factories import (
    TEBET_TIMUR,
    create_referral,
    known_agency,
    known_household,
    known_posyandu,
)
from tests.support import tokens
from tests.support.waiting import eventually


def test_the_checked_in_asyncapi_document_is_current() -> None:
    checked_in = json.loads((Path(__file__).parents[1] / "asyncapi.json").read_text())
    assert checked_in == json.loads(json.dumps(asyncapi(), sort_keys=True)), "run `make asyncapi`"
    channels = {c["address"] for c in checked_in["channels"].values()}
    assert "posyandu.referral.pekerjaan-umum.v1" in channels and "posyandu.household.v1" in channels
    messages = {m["name"] for m in checked_in["components"]["messages"].values()}
    assert {"posyandu.referral.overdue.v1", "posyandu.referral.escalated.v1",
            "posyandu.referral.note-added.v1", "posyandu.household.need-detected.v1"} <= messages


async def test_an_admin_republishes_the_open_referrals_of_a_field_as_snapshots(
        registry: httpx.AsyncClient, household: httpx.AsyncClient, referral: httpx.AsyncClient,
        household_db: asyncpg.Connection, referral_db: asyncpg.Connection) -> None:
    await known_agency(registry, referral_db, "3174", ["pendidikan"])
    place = await known_posyandu(registry, household_db, TEBET_TIMUR)
    created = await known_household(household, referral_db, place, TEBET_TIMUR)
    made = await create_referral(referral, created, spm_field="pendidikan", category="pendidikan.kesetaraan")
    url = f"/api/v1/referrals/republish?field=pendidikan&since={made['created_at'].replace('+', '%2B')}"
    assert (await referral.post(url, headers=tokens.kader([place]))).status_code == 403
    response = await referral.post(url, headers=tokens.admin())
    assert response.status_code == 200, response.text
    assert response.json()["count"] >= 1
    snapshots = await referral_db.fetch("SELECT topic FROM outbox WHERE key = $1 AND event_type = $2", made["id"],
                                        "posyandu.referral.snapshot.v1")
    assert [s["topic"] for s in snapshots] == ["posyandu.referral.pendidikan.v1"]


async def test_a_restarted_service_keeps_its_referrals_and_resends_nothing(
        registry: httpx.AsyncClient, household: httpx.AsyncClient, referral: httpx.AsyncClient,
        household_db: asyncpg.Connection, referral_db: asyncpg.Connection,
        referral_settings: ReferralSettings) -> None:
    place = await known_posyandu(registry, household_db, TEBET_TIMUR)
    created = await known_household(household, referral_db, place, TEBET_TIMUR)
    made = await create_referral(referral, created, spm_field="kesehatan", category="kesehatan.hypertension")

    async def published() -> bool:
        return not await referral_db.fetchval("SELECT count(*) FROM outbox WHERE key = $1 AND published_at IS NULL",
                                              made["id"])

    await eventually(published, "the referral's events to be published")
    before = await referral_db.fetch("SELECT event_id, published_at FROM outbox WHERE key = $1", made["id"])
    app = create_app(referral_settings)
    async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://referral") as restarted:
            again = await restarted.get(f"/api/v1/referrals/{made['id']}", headers=tokens.kader([place]))
            assert again.status_code == 200 and again.json()["status"] == made["status"]
    after = await referral_db.fetch("SELECT event_id, published_at FROM outbox WHERE key = $1", made["id"])
    assert after == before
