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
from shared.events.envelope import CloudEvent
from shared.events.topics import SpmField
from shared.observability import REQUEST_ID_HEADER, request_id_var
from tests.support import tokens

#: Regency 1203 (Tapanuli Selatan) is this module's own: no other test routes referrals there.
VILLAGE = "1203012001"
FIELD = "pekerjaan-umum"
#: The regency's one agency of the field (the same for every test of the module: the earliest registered routes).
AGENCY = uuid.uuid5(uuid.NAMESPACE_URL, "posyandu-test:statements:1203")
#: The agency's webhook subscription for its new referrals (its receiver is never reached: only the rows count).
SUBSCRIPTION = uuid.uuid5(uuid.NAMESPACE_URL, "posyandu-test:statements:1203:webhook")
#: The most statements a referral POST may cost: one read (household and member, agency, SLA and escalation delay)
#: and one write (the referral with its history entry, the outbox row and the webhook deliveries). The SLA terms of
#: this field and urgency count calendar days, so no holidays are read.
MOST = 2
#: The most statements the need handler may cost past its inbox claim: the read (agency, SLA and escalation delay)
#: and the write.
MOST_OF_NEED = 2


async def _place(referral_db: asyncpg.Connection) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID, uuid.UUID]:
    """An agency with a webhook subscription, a posyandu, a household and a member in the referral service's read
    models (as its consumers and the agency's API calls write them)."""
    agency, posyandu, household, member = AGENCY, uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await referral_db.execute(
        "INSERT INTO known_agencies (id, name, level, jurisdiction_code, spm_fields, status, version, registered_at)"
        " VALUES ($1, 'Dinas PU Tapanuli Selatan', 'regency', '1203', $2, 'active', 1, now())"
        " ON CONFLICT DO NOTHING", agency, [FIELD])
    await referral_db.execute(
        "INSERT INTO webhook_subscriptions (id, agency_id, spm_fields, url, event_types, secret, status,"
        " consecutive_failures, created_by, created_at, updated_at) VALUES ($1, $2, $3,"
        " 'https://receiver.invalid/statements', ARRAY['posyandu.referral.created.v1'], 'whsec_test', 'active', 0,"
        " 'test', now(), now()) ON CONFLICT DO NOTHING", SUBSCRIPTION, agency, [FIELD])
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
    assert await _deliveries_of(referral_db, created) == 1


async def test_the_one_read_refuses_routes_and_leaves_unrouted_as_before(referral: httpx.AsyncClient,
                                                                        referral_db: asyncpg.Connection) -> None:
    _, posyandu, household, member = await _place(referral_db)
    kader = tokens.kader([str(posyandu)])

    async def post(**body: object) -> httpx.Response:
        return await referral.post("/api/v1/referrals", headers=kader, json={
            "household_id": str(household), "spm_field": FIELD, "category": "pekerjaan-umum.drinking-water",
            "reason": "Air sumur keruh", **body})

    def refused(response: httpx.Response) -> tuple[int, str, str]:
        problem = response.json()
        return response.status_code, problem["errors"][0]["field"], problem["detail"]

    # The household is checked first, then the category, then the member.
    assert refused(await post(household_id=str(uuid.uuid4()), category="nope")) == (
        422, "household_id", "Not an active household of your posyandu known to this service.")
    assert refused(await post(category="perumahan-rakyat.rtlh")) == (
        422, "category", "perumahan-rakyat.rtlh is not a referral category of pekerjaan-umum.")
    assert refused(await post(category="pekerjaan-umum.nope", member_id=str(uuid.uuid4()))) == (
        422, "category", "pekerjaan-umum.nope is not a referral category of pekerjaan-umum.")
    assert refused(await post(member_id=str(uuid.uuid4()))) == (
        422, "member_id", "Not an active member of this household.")
    # A draft reaches no agency (no clocks, no delivery); nor does a referral of a field without an agency here.
    draft = await post(member_id=str(member), draft=True)
    unrouted = await post(spm_field="perumahan-rakyat", category="perumahan-rakyat.rtlh")
    for response, status in ((draft, "draft"), (unrouted, "requested")):
        assert response.status_code == 201, response.text
        made = response.json()
        assert (made["status"], made["agency_id"], made["unrouted"], made["respond_by"]) == (status, None, True, None)
        assert await referral_db.fetchval("SELECT count(*) FROM outbox WHERE key = $1", made["id"]) == 1
        assert await referral_db.fetchval("SELECT count(*) FROM webhook_deliveries WHERE referral_id = $1",
                                          uuid.UUID(made["id"])) == 0


async def _deliveries_of(referral_db: asyncpg.Connection, referral_id: uuid.UUID) -> int:
    return int(await referral_db.fetchval("SELECT count(*) FROM webhook_deliveries WHERE referral_id = $1"
                                          " AND subscription_id = $2", referral_id, SUBSCRIPTION))


def _need_detected(posyandu: uuid.UUID, household: uuid.UUID, member: uuid.UUID) -> hh.NeedData:
    return hh.NeedData(need_id=uuid.uuid4(), household_id=household, member_id=member,
                       member_nik_masked="120301******0001", posyandu_id=posyandu, village_code=VILLAGE,
                       spm_field=SpmField(FIELD), category="pekerjaan-umum.sanitation", urgency="high",
                       evidence={"toilet": "none"})


async def _handle(referral_settings: ReferralSettings, event: CloudEvent) -> tuple[int, list[str]]:
    """Hand one event to the need handler in a real transaction; how many it applied, and the statements."""
    # Its own engine and a real commit, not the rolled-back session: that session's savepoints would be counted.
    engine = create_engine(referral_settings)
    try:
        with statements_of(engine.sync_engine, lambda: True) as seen:
            applied = await apply_once(create_sessionmaker(engine), "statements-test",
                                       HouseholdEvents(referral_settings).handlers(), [event])
    finally:
        await engine.dispose()
    return applied, seen


async def test_the_need_handler_costs_a_few_statements(referral_settings: ReferralSettings,
                                                       referral_db: asyncpg.Connection) -> None:
    agency, posyandu, household, member = await _place(referral_db)
    need = _need_detected(posyandu, household, member)
    applied, seen = await _handle(referral_settings, hh.NEED_DETECTED.new(need, subject=str(household),
                                                                          regioncode=VILLAGE))
    assert applied == 1
    row = await referral_db.fetchrow("SELECT id, agency_id, respond_by FROM referrals WHERE need_id = $1",
                                     need.need_id)
    assert row["agency_id"] == agency and row["respond_by"] is not None
    # The inbox claim, then the referral's own statements.
    assert 0 < len(seen) - 1 <= MOST_OF_NEED, "\n".join(seen)
    assert await referral_db.fetchval("SELECT count(*) FROM referral_transitions WHERE referral_id = $1",
                                      row["id"]) == 1
    assert await referral_db.fetchval("SELECT count(*) FROM outbox WHERE key = $1", str(row["id"])) == 1
    assert await _deliveries_of(referral_db, row["id"]) == 1


async def test_a_need_that_has_its_referral_writes_no_event_and_no_delivery(
        referral_settings: ReferralSettings, referral_db: asyncpg.Connection) -> None:
    _, posyandu, household, member = await _place(referral_db)
    need = _need_detected(posyandu, household, member)
    first = hh.NEED_DETECTED.new(need, subject=str(household), regioncode=VILLAGE)
    assert (await _handle(referral_settings, first))[0] == 1
    referral_id = await referral_db.fetchval("SELECT id FROM referrals WHERE need_id = $1", need.need_id)
    # The same need under a new event id (a replay by the producer): the inbox lets it in, the need's unique
    # index keeps its second referral out, and with it the history entry, the event and the delivery.
    replayed = hh.NEED_DETECTED.new(need, subject=str(household), regioncode=VILLAGE)
    assert (await _handle(referral_settings, replayed))[0] == 1
    assert await referral_db.fetchval("SELECT count(*) FROM referrals WHERE need_id = $1", need.need_id) == 1
    assert await referral_db.fetchval("SELECT count(*) FROM referral_transitions WHERE referral_id = $1",
                                      referral_id) == 1
    assert await referral_db.fetchval("SELECT count(*) FROM outbox WHERE key = $1", str(referral_id)) == 1
    assert await _deliveries_of(referral_db, referral_id) == 1
    # Nothing keyed by another referral id either (the statement wrote no outbox row at all).
    assert await referral_db.fetchval("SELECT count(*) FROM outbox WHERE convert_from(payload, 'UTF8') LIKE $1",
                                      f"%{need.need_id}%") == 1
