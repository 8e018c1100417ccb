"""The assigned agency's read: full NIK and name through the household service, audited in both services."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import httpx
import pytest

from services.referral.household_api import HouseholdApi
from services.referral.tests.factories import (
    TEBET_TIMUR,
    create_referral,
    known_agency,
    known_household,
    known_posyandu,
)
from tests.support import tokens
from tests.support.waiting import eventually


async def _member_referral(registry: httpx.AsyncClient, household: httpx.AsyncClient, referral: httpx.AsyncClient,
                           household_db: asyncpg.Connection,
                           referral_db: asyncpg.Connection) -> tuple[dict[str, Any], dict[str, Any]]:
    """A household and a referral of its head routed to an agency, once the household service knows the referral."""
    await known_agency(registry, referral_db, "3174", ["kesehatan"])
    place = await known_posyandu(registry, household_db, TEBET_TIMUR)
    created = await known_household(household, referral_db, place, TEBET_TIMUR)
    made = await create_referral(referral, created, spm_field="kesehatan", category="kesehatan.tb-suspect")

    async def household_knows_the_referral() -> bool:
        return bool(await household_db.fetchval("SELECT count(*) FROM agency_access WHERE referral_id = $1 AND open",
                                                uuid.UUID(made["id"])))

    await eventually(household_knows_the_referral, "the household service to learn the referral")
    return created, made


async def test_the_assigned_agency_reads_the_full_nik_and_both_services_audit_it(
        registry: httpx.AsyncClient, household: httpx.AsyncClient, referral: httpx.AsyncClient,
        household_db: asyncpg.Connection, referral_db: asyncpg.Connection) -> None:
    created, made = await _member_referral(registry, household, referral, household_db, referral_db)
    place = created["posyandu_id"]
    agency = tokens.opd(made["agency_id"], ["kesehatan"])
    head = created["members"][0]
    assert made["member_nik_masked"] == head["nik"][:6] + "******" + head["nik"][-4:]
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


@pytest.mark.parametrize("sent", [None, "trace-7f3a.agency:42", "two words", "x" * 65])
async def test_the_household_read_and_both_audit_rows_carry_the_callers_request_id(
        sent: str | None, registry: httpx.AsyncClient, household: httpx.AsyncClient, referral: httpx.AsyncClient,
        household_db: asyncpg.Connection, referral_db: asyncpg.Connection) -> None:
    created, made = await _member_referral(registry, household, referral, household_db, referral_db)
    last_read = await household_db.fetchval("SELECT coalesce(max(id), 0) FROM audit_log")
    headers = tokens.opd(made["agency_id"], ["kesehatan"]) | ({"X-Request-ID": sent} if sent else {})
    response = await referral.get(f"/api/v1/referrals/{made['id']}", headers=headers)
    assert response.status_code == 200 and response.json()["member_details"] is not None, response.text
    request_id = response.headers["x-request-id"]
    # A safe id is adopted as sent; none, or one with unsafe characters or too long, is replaced by a new one.
    assert request_id == sent if sent == "trace-7f3a.agency:42" else request_id != sent and len(request_id) == 32

    theirs = await household_db.fetch("SELECT request_id FROM audit_log WHERE id > $1 AND subject_ref = $2",
                                      last_read, created["id"])
    mine = await referral_db.fetch("SELECT request_id FROM audit_log WHERE resource_id = $1", made["id"])
    assert [r["request_id"] for r in theirs] == [request_id]
    assert [r["request_id"] for r in mine] == [request_id]


async def test_an_unreachable_household_service_degrades_to_masked_data() -> None:
    api = HouseholdApi("http://127.0.0.1:9", timeout=1)
    lookup = await api.member(household_id=uuid.uuid4(), member_id=uuid.uuid4(), authorization="Bearer x")
    assert lookup.details is None and lookup.unavailable and "unreachable" in lookup.unavailable
