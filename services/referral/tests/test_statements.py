"""The referral POST and the need handler each cost a few statements, whatever routing, SLA and webhooks hold."""

from __future__ import annotations

import uuid

import asyncpg
import httpx
import sqlalchemy as sa

from services.referral.consumers.household import HouseholdEvents
from services.referral.settings import ReferralSettings
from services.referral.tests.factories import statements_of
from shared.consumer import apply_once
from shared.db import create_engine, create_sessionmaker
from shared.events import household as hh
from shared.events.topics import SpmField
from shared.observability import REQUEST_ID_HEADER, request_id_var
from tests.support import tokens

#: Regency 1203 (Tapanuli Selatan) is this module's own: no other test routes referrals there.
VILLAGE = "1203012001"
FIELD = "pekerjaan-umum"
#: The regency's one agency of the field (the same for every test of the module: the earliest registered routes).
AGENCY = uuid.uuid5(uuid.NAMESPACE_URL, "posyandu-test:statements:1203")
#: The most statements a referral may cost: its reads (household and member; agency, SLA and escalation delay in
#: one) and its writes (the referral with its history entry; the outbox row; webhook deliveries).
MOST = 5


async def _place(referral_db: asyncpg.Connection) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID, uuid.UUID]:
    """An agency, a posyandu, a household and a member in the referral service's read models (as its consumers
    write them from the registry's and the household service's events)."""
    agency, posyandu, household, member = AGENCY, uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await referral_db.execute(
        "INSERT INTO known_agencies (id, name, level, jurisdiction_code, spm_fields, status, version, registered_at)"
        " VALUES ($1, 'Dinas PU Tapanuli Selatan', 'regency', '1203', $2, 'active', 1, now())"
        " ON CONFLICT DO NOTHING", agency, [FIELD])
    await referral_db.execute("INSERT INTO known_households (id, posyandu_id, village_code, status, version)"
                              " VALUES ($1, $2, $3, 'active', 1)", household, posyandu, VILLAGE)
    await referral_db.execute("INSERT INTO known_members (id, household_id, nik_masked, status, version)"
                              " VALUES ($1, $2, '120301******0001', 'active', 1)", member, household)
    return agency, posyandu, household, member


async def test_a_referral_post_costs_a_few_statements(referral: httpx.AsyncClient,
                                                      referral_db: asyncpg.Connection) -> None:
    agency, posyandu, household, member = await _place(referral_db)
    request_id = f"statements-{uuid.uuid4().hex}"
    with statements_of(sa.Engine, lambda: request_id_var.get() == request_id) as seen:
        response = await referral.post("/api/v1/referrals", headers={
            **tokens.kader([str(posyandu)]), REQUEST_ID_HEADER: request_id}, json={
            "household_id": str(household), "member_id": str(member), "spm_field": FIELD,
            "category": "pekerjaan-umum.drinking-water", "reason": "Air sumur keruh"})
    assert response.status_code == 201, response.text
    assert response.json()["agency_id"] == str(agency)
    assert response.json()["respond_by"] is not None
    assert 0 < len(seen) <= MOST, "\n".join(seen)
    created = uuid.UUID(response.json()["id"])
    assert await referral_db.fetchval("SELECT count(*) FROM referral_transitions WHERE referral_id = $1", created) == 1
    assert await referral_db.fetchval("SELECT count(*) FROM outbox WHERE key = $1", str(created)) == 1


async def test_the_need_handler_costs_a_few_statements(referral_settings: ReferralSettings,
                                                       referral_db: asyncpg.Connection) -> None:
    agency, posyandu, household, member = await _place(referral_db)
    need = hh.NeedData(need_id=uuid.uuid4(), household_id=household, member_id=member,
                       member_nik_masked="120301******0001", posyandu_id=posyandu, village_code=VILLAGE,
                       spm_field=SpmField(FIELD), category="pekerjaan-umum.sanitation", urgency="high",
                       evidence={"toilet": "none"})
    event = hh.NEED_DETECTED.new(need, subject=str(household), regioncode=VILLAGE)
    # Its own engine and a real commit, not the rolled-back session: that session's savepoints would be counted.
    engine = create_engine(referral_settings)
    try:
        with statements_of(engine.sync_engine, lambda: True) as seen:
            applied = await apply_once(create_sessionmaker(engine), "statements-test",
                                       HouseholdEvents(referral_settings).handlers(), [event])
    finally:
        await engine.dispose()
    assert applied == 1
    row = await referral_db.fetchrow("SELECT agency_id, respond_by FROM referrals WHERE need_id = $1", need.need_id)
    assert row["agency_id"] == agency and row["respond_by"] is not None
    # The inbox claim, then the referral's own statements.
    assert 0 < len(seen) - 1 <= MOST, "\n".join(seen)
