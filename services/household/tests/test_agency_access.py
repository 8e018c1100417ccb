"""An agency reads a household only while it holds an open referral for it, and then sees the full NIK."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import httpx
from aiokafka import AIOKafkaProducer

from conftest import Stack
from services.household.tests.factories import known_posyandu, register
from shared.events import referral as ref
from shared.events.catalogue import EventType
from shared.events.envelope import CloudEvent
from shared.events.topics import SpmField
from tests.support import tokens
from tests.support.waiting import eventually


def referral_event(event_type: EventType, household: dict[str, Any], agency_id: uuid.UUID, referral_id: uuid.UUID,
                   status: str, version: int) -> CloudEvent:
    data = ref.ReferralData(referral_id=referral_id, need_id=None, household_id=household["id"], member_id=None,
                            posyandu_id=household["posyandu_id"],
                            village_code=household["village_code"], spm_field=SpmField.KESEHATAN,
                            category="kesehatan.tb-suspect", urgency="high", status=status, agency_id=agency_id,
                            respond_by=None, complete_by=None, version=version)
    return event_type.new(data, subject=str(referral_id), spmfield=SpmField.KESEHATAN)


async def until_status(client: httpx.AsyncClient, url: str, headers: dict[str, str], status: int) -> httpx.Response:
    return await eventually(lambda: client.get(url, headers=headers), f"a {status} from {url}", timeout=60,
                            interval=0.2, until=lambda response: response.status_code == status)


async def test_agency_access_follows_the_referral(registry: httpx.AsyncClient, household: httpx.AsyncClient,
                                                  household_db: asyncpg.Connection, stack: Stack) -> None:
    posyandu = await known_posyandu(registry, household_db)
    created = await register(household, posyandu)
    agency, other_agency = uuid.uuid4(), uuid.uuid4()
    referral_id = uuid.uuid4()
    url = f"/api/v1/households/{created['id']}"
    as_agency = tokens.opd(agency, ["kesehatan"])
    assert (await household.get(url, headers=as_agency)).status_code == 404

    producer = AIOKafkaProducer(bootstrap_servers=stack.broker.bootstrap_servers)
    await producer.start()
    try:
        async def send(event: CloudEvent) -> None:
            await producer.send_and_wait("posyandu.referral.kesehatan.v1", event.to_bytes(),
                                         key=str(referral_id).encode())

        await send(referral_event(ref.REFERRAL_CREATED, created, agency, referral_id, "requested", 1))
        seen = (await until_status(household, url, as_agency, 200)).json()
        assert seen["members"][0]["nik"] == created["members"][0]["nik"]  # the referral's agency has a need
        assert (await household.get(url, headers=tokens.opd(other_agency, ["kesehatan"]))).status_code == 404
        # The same agency acting for another of its fields has no need to read this household.
        assert (await household.get(url, headers=tokens.opd(agency, ["sosial"]))).status_code == 404
        listed = (await household.get("/api/v1/households", headers=as_agency)).json()
        assert [h["id"] for h in listed["items"]] == [created["id"]]

        await send(referral_event(ref.REFERRAL_REASSIGNED, created, other_agency, referral_id, "requested", 2))
        await until_status(household, url, tokens.opd(other_agency, ["kesehatan"]), 200)
        assert (await household.get(url, headers=as_agency)).status_code == 404

        await send(referral_event(ref.REFERRAL_STATUS_CHANGED, created, other_agency, referral_id, "completed", 3))
        await until_status(household, url, tokens.opd(other_agency, ["kesehatan"]), 404)
    finally:
        await producer.stop()
    audit = await household_db.fetch("SELECT actor_role, purpose FROM audit_log WHERE subject_ref = $1 "
                                      "AND actor_role = 'opd'", created["id"])
    assert audit and all("open referral" in a["purpose"] for a in audit)


async def test_agency_access_follows_escalation_and_unrouting_and_ignores_older_events(
        registry: httpx.AsyncClient, household: httpx.AsyncClient, household_db: asyncpg.Connection,
        stack: Stack) -> None:
    posyandu = await known_posyandu(registry, household_db)
    created = await register(household, posyandu)
    regency, province, stranger = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    referral_id = uuid.uuid4()
    url = f"/api/v1/households/{created['id']}"
    as_regency, as_province = tokens.opd(regency, ["kesehatan"]), tokens.opd(province, ["kesehatan"])

    producer = AIOKafkaProducer(bootstrap_servers=stack.broker.bootstrap_servers)
    await producer.start()
    try:
        async def send(event: CloudEvent) -> None:
            await producer.send_and_wait("posyandu.referral.kesehatan.v1", event.to_bytes(),
                                         key=str(referral_id).encode())

        await send(referral_event(ref.REFERRAL_CREATED, created, regency, referral_id, "requested", 1))
        await until_status(household, url, as_regency, 200)
        assert (await household.get(url, headers=as_province)).status_code == 404
        escalation = referral_event(ref.REFERRAL_ESCALATED, created, regency, referral_id, "requested", 3)
        escalation = escalation.model_copy(update={"data": {**escalation.data,
                                                            "escalated_to_agency_id": str(province)}})
        await send(escalation)
        seen = (await until_status(household, url, as_province, 200)).json()
        assert seen["members"][0]["nik"] == created["members"][0]["nik"]  # it acts on the referral too
        assert created["id"] in [h["id"] for h in (await household.get("/api/v1/households",
                                                                        headers=as_province)).json()["items"]]
        assert (await household.get(url, headers=as_regency)).status_code == 200  # the regency keeps its access
        # A late, older event (version 2) changes nothing; a marker event on another referral shows it was consumed.
        await send(referral_event(ref.REFERRAL_REASSIGNED, created, stranger, referral_id, "requested", 2))
        marker = uuid.uuid4()
        await producer.send_and_wait("posyandu.referral.kesehatan.v1", referral_event(
            ref.REFERRAL_CREATED, created, stranger, marker, "cancelled", 1).to_bytes(), key=str(marker).encode())
        await eventually_consumed(household_db, marker)
        for headers in (as_regency, as_province):
            assert (await household.get(url, headers=headers)).status_code == 200
        # Unrouted (its agency deactivated, no other for the route): nobody reads through it any more.
        unrouted = referral_event(ref.REFERRAL_UNROUTED, created, regency, referral_id, "requested", 4)
        unrouted = unrouted.model_copy(update={"data": {**unrouted.data, "agency_id": None}})
        await send(unrouted)
        await until_status(household, url, as_regency, 404)
        assert (await household.get(url, headers=as_province)).status_code == 404
    finally:
        await producer.stop()


async def eventually_consumed(household_db: asyncpg.Connection, referral_id: uuid.UUID) -> None:
    async def consumed() -> bool:
        return bool(await household_db.fetchval("SELECT count(*) FROM agency_access WHERE referral_id = $1",
                                                referral_id))

    await eventually(consumed, "the marker event to be consumed", timeout=60, interval=0.2)
