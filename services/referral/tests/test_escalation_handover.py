"""Escalation hands over: an escalated referral is the province agency's to read and act on (note, lifecycle,
reassign back), the regency agency keeps its access, both see who did what, and the province agency reads the
household in the household service.

Kabupaten Mamuju (7602) in Sulawesi Barat (76) with the field perumahan-rakyat is this module's own. Its referrals
are made by the service's clock set a month back, so the sweep at the real time escalates them without moving
time for anyone else's referrals. The sweep commits (no rolled-back session, tests/support/database.py): the tests
then act on the escalated referrals through the API, and the household service learns of the escalation from its
events.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from services.referral.settings import ReferralSettings
from services.referral.sla.service import run_sla_sweep
from services.referral.tests.factories import (
    create_referral,
    known_agency,
    known_household,
    known_posyandu,
    outbox_types,
)
from shared.db import create_engine, create_sessionmaker
from tests.support import tokens
from tests.support.waiting import eventually

FIELD, CATEGORY = "perumahan-rakyat", "perumahan-rakyat.disaster-damage"
BINANGA = "7602011002"  # Kabupaten Mamuju, Sulawesi Barat


@pytest.fixture
async def sessions(referral_settings: ReferralSettings) -> AsyncIterator[Any]:
    engine = create_engine(referral_settings)
    yield create_sessionmaker(engine)
    await engine.dispose()


@pytest.fixture
async def escalated(registry: httpx.AsyncClient, household: httpx.AsyncClient, referral: httpx.AsyncClient,
                    household_db: asyncpg.Connection, referral_db: asyncpg.Connection,
                    referral_settings: ReferralSettings, sessions: Any) -> dict[str, Any]:
    """Two emergency referrals of one household, escalated from the regency to the province agency. (The router
    takes the earliest registered agency of each level: the first test's, which the later ones reuse.)"""
    await known_agency(registry, referral_db, "7602", [FIELD])
    await known_agency(registry, referral_db, "76", [FIELD])
    place = await known_posyandu(registry, household_db, BINANGA)
    created = await known_household(household, referral_db, place, BINANGA)
    original = referral_settings.clock
    referral_settings.clock = lambda: datetime.now(UTC) - timedelta(days=30)
    try:
        made = [await create_referral(referral, created, spm_field=FIELD, category=CATEGORY, urgency="emergency")
                for _ in range(2)]
    finally:
        referral_settings.clock = original
    regency = made[0]["agency_id"]
    assert regency is not None and {m["agency_id"] for m in made} == {regency}
    province = await referral_db.fetchval("SELECT id::text FROM known_agencies WHERE level = 'province' AND "
                                          "jurisdiction_code = '76' AND $1 = ANY(spm_fields) AND status = 'active' "
                                          "ORDER BY registered_at, id LIMIT 1", FIELD)
    session: AsyncSession
    async with sessions() as session, session.begin():
        await run_sla_sweep(session, datetime.now(UTC))  # what the background job does at this time
    for m in made:
        after = (await referral.get(f"/api/v1/referrals/{m['id']}", headers=tokens.admin())).json()
        assert after["escalated_to_agency_id"] == province and after["agency_id"] == regency
    return {"regency": regency, "province": province, "household": created, "posyandu": place,
            "first": made[0], "second": made[1]}


async def _act(referral: httpx.AsyncClient, referral_id: str, agency: str, action: str,
               **body: Any) -> httpx.Response:
    return await referral.post(f"/api/v1/referrals/{referral_id}/{action}", json=body or None,
                               headers=tokens.opd(agency, [FIELD]))


async def test_the_province_agency_reads_and_acts_on_an_escalated_referral_and_the_regency_keeps_reading(
        referral: httpx.AsyncClient, referral_db: asyncpg.Connection, escalated: dict[str, Any]) -> None:
    regency, province, first = escalated["regency"], escalated["province"], escalated["first"]
    as_province, as_regency = tokens.opd(province, [FIELD]), tokens.opd(regency, [FIELD])
    url = f"/api/v1/referrals/{first['id']}"

    # Read (with the free text, as the agency side), list, inbox: one rule for all.
    for headers in (as_province, as_regency):
        seen = await referral.get(url, headers=headers)
        assert seen.status_code == 200 and seen.json()["reason"] == first["reason"]
    listed = (await referral.get("/api/v1/referrals?region=7602", headers=as_province)).json()["items"]
    assert {escalated["first"]["id"], escalated["second"]["id"]} <= {r["id"] for r in listed}
    inbox = (await referral.get(f"/api/v1/agencies/{province}/referrals", headers=as_province)).json()["items"]
    assert {escalated["first"]["id"], escalated["second"]["id"]} <= {r["id"] for r in inbox}
    # An agency of the province's other fields, and another province agency, still see nothing.
    assert (await referral.get(url, headers=tokens.opd(province, ["kesehatan"]))).status_code == 404

    # A note, then the lifecycle, as the province agency.
    noted = await referral.post(f"{url}/notes", json={"text": "Tim provinsi meninjau rumah ini."},
                                headers=as_province)
    assert noted.status_code == 201, noted.text
    assert (noted.json()["author_side"], noted.json()["author_agency_id"]) == ("agency", province)
    for action in ("accept", "start"):
        response = await _act(referral, first["id"], province, action)
        assert response.status_code == 200, response.text
    assert response.json()["status"] == "in-progress" and response.json()["agency_id"] == regency
    # The regency agency keeps acting too: it completes what the province started.
    done = await _act(referral, first["id"], regency, "complete", outcome="Rumah diperbaiki bersama")
    assert done.status_code == 200 and done.json()["status"] == "completed"

    # Both read who did what: the history names the acting agency; the notes name their author's agency.
    for headers in (as_province, as_regency):
        rows = (await referral.get(f"{url}/history", headers=headers)).json()
        assert [(h["action"], h["actor_role"], h["actor_agency_id"]) for h in rows] == [
            ("create", "kader", None), ("escalate", "service", None), ("accept", "opd", province),
            ("start", "opd", province), ("complete", "opd", regency)]
        notes = (await referral.get(f"{url}/notes", headers=headers)).json()
        assert [(n["author_agency_id"], n["text"]) for n in notes] == [(province, "Tim provinsi meninjau rumah ini.")]
    assert (await outbox_types(referral_db, first["id"])) == [
        "posyandu.referral.created.v1", "posyandu.referral.overdue.v1", "posyandu.referral.escalated.v1",
        "posyandu.referral.note-added.v1", *["posyandu.referral.status-changed.v1"] * 3]


async def test_the_province_agency_reassigns_back_to_the_regency_agency_and_its_access_ends(
        referral: httpx.AsyncClient, escalated: dict[str, Any]) -> None:
    regency, province, second = escalated["regency"], escalated["province"], escalated["second"]
    url = f"/api/v1/referrals/{second['id']}"
    back = await _act(referral, second["id"], province, "reassign", agency_id=regency,
                      reason="Kewenangan kabupaten; tim kabupaten sudah siap")
    assert back.status_code == 200, back.text
    body = back.json()
    assert (body["status"], body["agency_id"], body["escalated_to_agency_id"]) == ("requested", regency, None)
    assert body["respond_by"] and datetime.fromisoformat(body["respond_by"]) > datetime.now(UTC)
    rows = (await referral.get(f"{url}/history", headers=tokens.opd(regency, [FIELD]))).json()
    assert (rows[-1]["action"], rows[-1]["actor_agency_id"], rows[-1]["from_agency_id"],
            rows[-1]["to_agency_id"]) == ("reassign", province, regency, regency)
    # Handed back, it is the regency agency's alone again (fresh deadlines; it escalates anew if overdue again).
    assert (await referral.get(url, headers=tokens.opd(province, [FIELD]))).status_code == 404
    accepted = await _act(referral, second["id"], regency, "accept")
    assert accepted.status_code == 200, accepted.text


async def test_the_province_agency_reads_the_household_while_the_escalated_referral_is_open(
        household: httpx.AsyncClient, referral: httpx.AsyncClient, escalated: dict[str, Any]) -> None:
    regency, province, created = escalated["regency"], escalated["province"], escalated["household"]
    url = f"/api/v1/households/{created['id']}"
    as_province = tokens.opd(province, [FIELD])

    async def readable() -> dict[str, Any] | None:
        response = await household.get(url, headers=as_province)
        return response.json() if response.status_code == 200 else None

    seen = await eventually(readable, "the household service to grant the escalated agency access")
    assert seen["members"][0]["nik"] == created["members"][0]["nik"]  # an agency acting on the referral
    listed = (await household.get("/api/v1/households", headers=as_province)).json()["items"]
    assert created["id"] in [h["id"] for h in listed]
    # The referral service's detail read fetches the member's NIK and name for the province agency too.
    detail = (await referral.get(f"/api/v1/referrals/{escalated['first']['id']}", headers=as_province)).json()
    assert detail["member_details"] is not None, detail.get("member_details_unavailable")

    # Both referrals leave the province (one completed, one handed back): its access ends, the regency keeps it.
    for referral_id in (escalated["first"]["id"], escalated["second"]["id"]):
        await _act(referral, referral_id, province, "accept")
    completed = await _act(referral, escalated["first"]["id"], province, "start")
    assert completed.status_code == 200
    assert (await _act(referral, escalated["first"]["id"], province, "complete",
                       outcome="Selesai")).status_code == 200
    assert (await _act(referral, escalated["second"]["id"], province, "reassign", agency_id=regency,
                       reason="Kembali ke kabupaten")).status_code == 200

    async def closed_to_province() -> bool:
        return (await household.get(url, headers=as_province)).status_code == 404

    await eventually(closed_to_province, "the escalated agency's household access to end")
    assert (await household.get(url, headers=tokens.opd(regency, [FIELD]))).status_code == 200
