"""Who sees which referral: the assigned agency in its fields, the posyandu's kader, the pembina of the region."""

from __future__ import annotations

import uuid

import asyncpg
import httpx

from services.referral.tests.factories import (
    TEBET_TIMUR,
    create_referral,
    known_agency,
    known_household,
    known_posyandu,
)
from tests.support import tokens


async def test_an_agency_sees_and_moves_only_referrals_routed_to_it_in_its_fields(
        registry: httpx.AsyncClient, household: httpx.AsyncClient, referral: httpx.AsyncClient,
        household_db: asyncpg.Connection, referral_db: asyncpg.Connection) -> None:
    await known_agency(registry, referral_db, "3174", ["kesehatan"])  # unless an earlier one of another test
    place = await known_posyandu(registry, household_db, TEBET_TIMUR)
    created = await known_household(household, referral_db, place, TEBET_TIMUR)
    health = await create_referral(referral, created, spm_field="kesehatan", category="kesehatan.tb-suspect")
    social = await create_referral(referral, created, spm_field="sosial", category="sosial.homeless", member=False)

    assigned = health["agency_id"]
    assert assigned is not None
    url = f"/api/v1/referrals/{health['id']}"
    # The assigned agency, but a token for another field only: as if the referral did not exist.
    wrong_field = tokens.opd(assigned, ["sosial"])
    assert (await referral.get(url, headers=wrong_field)).status_code == 404
    assert (await referral.post(f"{url}/accept", headers=wrong_field)).status_code == 404
    # Another agency of the same field.
    other = tokens.opd(uuid.uuid4(), ["kesehatan"])
    assert (await referral.get(url, headers=other)).status_code == 404
    assert (await referral.post(f"{url}/accept", headers=other)).status_code == 404
    assert (await referral.get(f"{url}/history", headers=other)).status_code == 404
    assert (await referral.get(f"{url}/notes", headers=other)).status_code == 404
    listed = (await referral.get("/api/v1/referrals", headers=other)).json()["items"]
    assert health["id"] not in [r["id"] for r in listed]
    assert (await referral.get(f"/api/v1/agencies/{assigned}/referrals", headers=other)).status_code == 404
    # The agency itself.
    mine = tokens.opd(assigned, ["kesehatan"])
    assert (await referral.get(url, headers=mine)).status_code == 200
    inbox = (await referral.get(f"/api/v1/agencies/{assigned}/referrals?status=requested", headers=mine)).json()
    assert health["id"] in [r["id"] for r in inbox["items"]]
    assert social["id"] not in [r["id"] for r in inbox["items"]]


async def test_kader_and_pembina_see_by_posyandu_and_region(
        registry: httpx.AsyncClient, household: httpx.AsyncClient, referral: httpx.AsyncClient,
        household_db: asyncpg.Connection, referral_db: asyncpg.Connection) -> None:
    place = await known_posyandu(registry, household_db, TEBET_TIMUR)
    created = await known_household(household, referral_db, place, TEBET_TIMUR)
    made = await create_referral(referral, created, spm_field="trantibumlinmas",
                                 category="trantibumlinmas.public-order", member=False)
    url = f"/api/v1/referrals/{made['id']}"
    assert (await referral.get(url, headers=tokens.kader([place]))).status_code == 200
    assert (await referral.get(url, headers=tokens.kader([uuid.uuid4()]))).status_code == 404
    inside = await referral.get(url, headers=tokens.pembina("3174"))
    assert inside.status_code == 200 and inside.json()["reason"] is None  # the free text stays with the two sides
    assert (await referral.get(url, headers=tokens.pembina("64"))).status_code == 404
    assert (await referral.get(url, headers=tokens.service())).status_code == 404
    listed = (await referral.get("/api/v1/referrals?region=3174&field=trantibumlinmas",
                                 headers=tokens.pembina("31"))).json()["items"]
    assert made["id"] in [r["id"] for r in listed]
    assert (await referral.get("/api/v1/referrals", headers=tokens.pembina("64"))).json()["items"] == [] or all(
        r["village_code"].startswith("64") for r in
        (await referral.get("/api/v1/referrals", headers=tokens.pembina("64"))).json()["items"])


async def test_lists_page_with_an_opaque_cursor(referral: httpx.AsyncClient) -> None:
    first = (await referral.get("/api/v1/referrals?limit=2", headers=tokens.admin())).json()
    assert len(first["items"]) == 2 and first["next_cursor"]
    second = (await referral.get(f"/api/v1/referrals?limit=2&cursor={first['next_cursor']}",
                                 headers=tokens.admin())).json()
    assert not {r["id"] for r in first["items"]} & {r["id"] for r in second["items"]}
    assert (await referral.get("/api/v1/referrals?cursor=bogus", headers=tokens.admin())).status_code == 400
