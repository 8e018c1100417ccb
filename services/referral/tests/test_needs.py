"""A need detected by the household service becomes exactly one referral, routed and published on its field topic."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
from aiokafka import AIOKafkaProducer
from sqlalchemy.ext.asyncio import AsyncSession

from conftest import Stack
from services.referral.referrals.service import create_from_need
from services.referral.tests.factories import (
    CENGKARENG_BARAT,
    known_agency,
    known_household,
    known_posyandu,
    outbox_types,
)
from shared.events import household as hh
from shared.events.envelope import CloudEvent
from shared.events.topics import HOUSEHOLD_TOPIC, SpmField
from tests.support import tokens
from tests.support.kafka import events_about, read_topic
from tests.support.waiting import eventually

TOPIC = "posyandu.referral.pekerjaan-umum.v1"


async def _referral_of(referral_db: asyncpg.Connection, household_id: str) -> asyncpg.Record:
    async def found() -> asyncpg.Record | None:
        return await referral_db.fetchrow("SELECT * FROM referrals WHERE household_id = $1",
                                          uuid.UUID(household_id))

    return await eventually(found, "the referral of the detected need")


async def _sanitation_need(registry: httpx.AsyncClient, household_client: httpx.AsyncClient,
                           household_db: asyncpg.Connection, referral_db: asyncpg.Connection) -> dict[str, Any]:
    place = await known_posyandu(registry, household_db, CENGKARENG_BARAT)
    created = await known_household(household_client, referral_db, place, CENGKARENG_BARAT)
    response = await household_client.put(f"/api/v1/households/{created['id']}/profiles/pekerjaan-umum",
                                          json={"household": {"toilet": "none"}}, headers=tokens.kader([place]))
    assert response.status_code == 201, response.text
    return created


async def test_a_detected_need_becomes_one_routed_referral_on_its_field_topic(
        registry: httpx.AsyncClient, household: httpx.AsyncClient, referral: httpx.AsyncClient,
        household_db: asyncpg.Connection, referral_db: asyncpg.Connection, stack: Stack) -> None:
    responsible = await known_agency(registry, referral_db, "3173", ["pekerjaan-umum"])
    created = await _sanitation_need(registry, household, household_db, referral_db)

    row = await _referral_of(referral_db, created["id"])
    assert (row["category"], row["urgency"], row["status"], row["origin"]) == (
        "pekerjaan-umum.sanitation", "high", "requested", "need")
    assert str(row["agency_id"]) == responsible
    assert row["respond_by"] is not None and row["complete_by"] is not None
    referral_id = str(row["id"])

    received = await read_topic(stack.broker.bootstrap_servers, TOPIC,
                                until=lambda rs: bool(events_about(rs, referral_id)))
    record = next(r for r in received if r.event is not None and r.event.subject == referral_id)
    raw = json.loads(record.record.value)
    assert raw["type"] == "posyandu.referral.created.v1" and raw["source"] == "/posyandu/referral"
    assert raw["spmfield"] == "pekerjaan-umum" and raw["regioncode"] == CENGKARENG_BARAT
    assert record.record.key == referral_id.encode()
    assert raw["data"]["agency_id"] == responsible and raw["data"]["category"] == "pekerjaan-umum.sanitation"
    assert "evidence" not in raw["data"]
    head_nik = created["members"][0]["nik"]
    assert head_nik not in record.record.value.decode()  # never a full NIK in an event
    # On its own field's topic only.
    topics = await referral_db.fetch("SELECT DISTINCT topic FROM outbox WHERE key = $1", referral_id)
    assert [t["topic"] for t in topics] == [TOPIC]

    # The assigned agency sees it in its inbox; the evidence is in the REST read.
    inbox = await referral.get(f"/api/v1/agencies/{responsible}/referrals?status=requested",
                               headers=tokens.opd(responsible, ["pekerjaan-umum"]))
    assert referral_id in [r["id"] for r in inbox.json()["items"]]
    detail = (await referral.get(f"/api/v1/referrals/{referral_id}",
                                 headers=tokens.opd(responsible, ["pekerjaan-umum"]))).json()
    assert detail["evidence"] and detail["member_details"] is None


async def test_a_redelivered_need_event_creates_no_second_referral(
        registry: httpx.AsyncClient, household: httpx.AsyncClient, referral: httpx.AsyncClient,
        household_db: asyncpg.Connection, referral_db: asyncpg.Connection, stack: Stack) -> None:
    created = await _sanitation_need(registry, household, household_db, referral_db)
    row = await _referral_of(referral_db, created["id"])
    need = hh.NeedData(need_id=row["need_id"], household_id=row["household_id"], member_id=None,
                       member_nik_masked=None, posyandu_id=row["posyandu_id"], village_code=row["village_code"],
                       spm_field=SpmField.PEKERJAAN_UMUM, category=row["category"], urgency=row["urgency"],
                       evidence={"toilet": "none"})
    same = hh.NEED_DETECTED.new(need, subject=created["id"], regioncode=CENGKARENG_BARAT)
    # The same event twice (a redelivery), and the same need under a new event id (a replay by the producer).
    replayed = CloudEvent.model_validate({**same.model_dump(), "id": uuid.uuid4()})
    producer = AIOKafkaProducer(bootstrap_servers=stack.broker.bootstrap_servers)
    await producer.start()
    try:
        for event in (same, same, replayed):
            await producer.send_and_wait(HOUSEHOLD_TOPIC, event.to_bytes(), key=created["id"].encode())
    finally:
        await producer.stop()

    async def handled() -> bool:
        return bool(await referral_db.fetchval("SELECT count(*) FROM inbox WHERE event_id = $1", replayed.id))

    await eventually(handled, "the replayed event to be handled")
    assert await referral_db.fetchval("SELECT count(*) FROM referrals WHERE need_id = $1", row["need_id"]) == 1
    assert await outbox_types(referral_db, str(row["id"])) == ["posyandu.referral.created.v1"]


async def test_a_resolved_need_adds_a_system_note_and_an_event_but_leaves_the_referral_open(
        registry: httpx.AsyncClient, household: httpx.AsyncClient, referral: httpx.AsyncClient,
        household_db: asyncpg.Connection, referral_db: asyncpg.Connection) -> None:
    created = await _sanitation_need(registry, household, household_db, referral_db)
    row = await _referral_of(referral_db, created["id"])
    response = await household.put(f"/api/v1/households/{created['id']}/profiles/pekerjaan-umum",
                                   json={"household": {"toilet": "private-with-septic"}},
                                   headers=tokens.kader([created["posyandu_id"]]))
    assert response.status_code == 201, response.text

    async def resolved() -> asyncpg.Record | None:
        return await referral_db.fetchrow("SELECT * FROM referrals WHERE id = $1 AND need_resolved_at IS NOT NULL",
                                          row["id"])

    after = await eventually(resolved, "the need's resolution")
    assert after["status"] == "requested"
    notes = (await referral.get(f"/api/v1/referrals/{row['id']}/notes",
                                headers=tokens.kader([created["posyandu_id"]]))).json()
    assert [n["author_side"] for n in notes] == ["system"]
    assert await outbox_types(referral_db, str(row["id"])) == [
        "posyandu.referral.created.v1", "posyandu.referral.note-added.v1", "posyandu.referral.need-resolved.v1"]


async def test_categories_configured_as_draft_wait_for_the_kader(referral_session: AsyncSession) -> None:
    need = hh.NeedData(need_id=uuid.uuid4(), household_id=uuid.uuid4(), member_id=None, member_nik_masked=None,
                       posyandu_id=uuid.uuid4(), village_code=CENGKARENG_BARAT, spm_field=SpmField.PEKERJAAN_UMUM,
                       category="pekerjaan-umum.wastewater", urgency="low", evidence={"wastewater": "none"})
    made = await create_from_need(session=referral_session, need=need, now=datetime.now(UTC),
                                  draft_categories=frozenset({"pekerjaan-umum.wastewater"}))
    assert made is not None and made.status == "draft" and made.agency_id is None
    again = await create_from_need(session=referral_session, need=need, now=datetime.now(UTC),
                                   draft_categories=frozenset())
    assert again is None
