"""Routing: a referral with no responsible agency waits unrouted, and is routed when one appears."""

from __future__ import annotations

import asyncpg
import httpx

from services.referral.tests.factories import (
    PISANGAN_BARU,
    create_referral,
    known_agency,
    known_household,
    known_posyandu,
    outbox_types,
)
from tests.support import tokens
from tests.support.waiting import eventually


async def test_an_unrouted_referral_is_visible_to_the_pembina_and_routed_when_an_agency_appears(
        registry: httpx.AsyncClient, household: httpx.AsyncClient, referral: httpx.AsyncClient,
        household_db: asyncpg.Connection, referral_db: asyncpg.Connection) -> None:
    place = await known_posyandu(registry, household_db, PISANGAN_BARU)
    created = await known_household(household, referral_db, place, PISANGAN_BARU)
    made = await create_referral(referral, created, spm_field="trantibumlinmas",
                                 category="trantibumlinmas.public-order", member=False)
    assert made["unrouted"] and made["agency_id"] is None and made["respond_by"] is None
    unrouted = (await referral.get("/api/v1/referrals?unrouted=true&region=3175",
                                   headers=tokens.pembina("3175"))).json()["items"]
    assert made["id"] in [r["id"] for r in unrouted]

    # A province agency of another province, and one of another field, change nothing.
    await known_agency(registry, referral_db, "64", ["trantibumlinmas"])
    await known_agency(registry, referral_db, "3175", ["sosial"])
    assert (await referral.get(f"/api/v1/referrals/{made['id']}", headers=tokens.admin())).json()["unrouted"]

    responsible = await known_agency(registry, referral_db, "3175", ["trantibumlinmas"])

    async def routed() -> dict[str, object] | None:
        body = (await referral.get(f"/api/v1/referrals/{made['id']}", headers=tokens.admin())).json()
        return body if body["agency_id"] else None

    after = await eventually(routed, "the referral to be routed")
    assert after["agency_id"] == responsible and after["status"] == "requested" and after["respond_by"]
    assert await outbox_types(referral_db, made["id"]) == ["posyandu.referral.created.v1",
                                                          "posyandu.referral.routed.v1"]
    history = (await referral.get(f"/api/v1/referrals/{made['id']}/history", headers=tokens.admin())).json()
    assert [(h["action"], h["actor"]) for h in history] == [("create", "kader-test"), ("route", "system")]
