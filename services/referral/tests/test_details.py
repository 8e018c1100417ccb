"""The assigned agency's read: full NIK and name through the household service, audited in both services."""

from __future__ import annotations

import uuid

import asyncpg
import httpx

from services.referral.household_api import HouseholdApi
from services.referral.tests.factories import (
    TEBET_TIMUR,
    create_referral,
    eventually,
    known_agency,
    known_household,
    known_posyandu,
)
from tests.support import tokens


async def test_the_assigned_agency_reads_the_full_nik_and_both_services_audit_it(
        registry: httpx.AsyncClient, household: httpx.AsyncClient, referral: httpx.AsyncClient,
        household_db: asyncpg.Connection, referral_db: asyncpg.Connection) -> None:
    await known_agency(registry, referral_db, "3174", ["kesehatan"])
    place = await known_posyandu(registry, household_db, TEBET_TIMUR)
    created = await known_household(household, referral_db, place, TEBET_TIMUR)
    made = await create_referral(referral, created, spm_field="kesehatan", category="kesehatan.tb-suspect")
    agency = tokens.opd(made["agency_id"], ["kesehatan"])
    head = created["members"][0]
    assert made["member_nik_masked"] == head["nik"][:6] + "******" + head["nik"][-4:]

    async def household_knows_the_referral() -> bool:
        return bool(await household_db.fetchval("SELECT count(*) FROM agency_access WHERE referral_id = $1 AND open",
                                                uuid.UUID(made["id"])))

    await eventually(household_knows_the_referral, "the household service to learn the referral")
    detail = (await referral.get(f"/api/v1/referrals/{made['id']}", headers=agency)).json()
    assert detail["member_details"] == {"member_id": head["id"], "nik": head["nik"], "name": head["name"]}
    assert detail["member_details_unavailable"] is None and detail["reason"]

    mine = await referral_db.fetch("SELECT actor_role, fields FROM audit_log WHERE resource_id = $1", made["id"])
    assert [a["actor_role"] for a in mine] == ["opd"] and "member_details" in mine[0]["fields"]
    theirs = await household_db.fetch("SELECT actor_role, purpose FROM audit_log WHERE subject_ref = $1 "
                                      "AND actor_role = 'opd'", created["id"])
    assert theirs and "open referral" in theirs[0]["purpose"]

    # Others get no member details, and the kader's own read is audited too.
    mine_kader = (await referral.get(f"/api/v1/referrals/{made['id']}", headers=tokens.kader([place]))).json()
    assert mine_kader["member_details"] is None and mine_kader["member_details_unavailable"] is None


async def test_an_unreachable_household_service_degrades_to_masked_data() -> None:
    api = HouseholdApi("http://127.0.0.1:9", timeout=1)
    lookup = await api.member(household_id=uuid.uuid4(), member_id=uuid.uuid4(), authorization="Bearer x")
    assert lookup.details is None and lookup.unavailable and "unreachable" in lookup.unavailable
