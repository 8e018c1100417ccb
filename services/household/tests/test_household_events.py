"""Every household change is an event on posyandu.household.v1; registry events keep the read model current."""

from __future__ import annotations

from datetime import date, timedelta

import asyncpg
import httpx
from aiokafka import AIOKafkaProducer

from conftest import Stack
from services.household.tests.factories import kk_number, known_posyandu, member, register
from shared.events import registry as reg
from tests.support import tokens
from tests.support.kafka import events_about, read_topic
from tests.support.waiting import eventually

CIDENG = "3171011002"


async def test_each_change_is_an_event_in_order(registry: httpx.AsyncClient, household: httpx.AsyncClient,
                                                household_db: asyncpg.Connection, stack: Stack) -> None:
    posyandu, other = await known_posyandu(registry, household_db), await known_posyandu(registry, household_db)
    kader = tokens.kader([posyandu, other])
    baby = member("Nia", "female", date.today() - timedelta(days=200), "child")
    created = await register(household, posyandu, members=[member("Eko", "male", date(1990, 9, 9), "head"), baby])
    url = f"/api/v1/households/{created['id']}"
    nia = next(m for m in created["members"] if m["name"] == "Nia")
    await household.patch(url, json={"kk_number": kk_number(date(2025, 1, 2))}, headers=kader)
    await household.patch(f"{url}/members/{nia['id']}", json={"disability": "sensory"}, headers=kader)
    await household.post(f"{url}/members/{nia['id']}/measurements",
                         json={"measured_on": date.today().isoformat(), "weight_kg": 7.0}, headers=kader)
    await household.post(f"{url}/move", json={"posyandu_id": other}, headers=kader)

    received = await read_topic(stack.broker.bootstrap_servers, "posyandu.household.v1", until=lambda rs: any(
        e.type == "posyandu.household.moved.v1" for e in events_about(rs, created["id"])))
    types = [e.type for e in events_about(received, created["id"])]
    assert types == ["posyandu.household.registered.v1", "posyandu.member.added.v1", "posyandu.member.added.v1",
                     "posyandu.household.updated.v1", "posyandu.member.updated.v1",
                     "posyandu.measurement.recorded.v1", "posyandu.household.moved.v1"]
    recorded = next(e for e in events_about(received, created["id"]) if e.type.startswith("posyandu.measurement"))
    assert recorded.data["member_id"] == nia["id"] and recorded.data["kms_signal"] == "B"
    assert all(e.regioncode == created["village_code"] for e in events_about(received, created["id"]))


async def test_a_retired_village_flags_its_households(registry: httpx.AsyncClient, household: httpx.AsyncClient,
                                                      household_db: asyncpg.Connection, stack: Stack) -> None:
    posyandu = await known_posyandu(registry, household_db)
    created = await register(household, posyandu, village_code=CIDENG)
    assert created["needs_reassignment"] is False
    producer = AIOKafkaProducer(bootstrap_servers=stack.broker.bootstrap_servers)
    await producer.start()
    try:
        data = reg.RegionData(code=CIDENG, name="Cideng", level=reg.RegionLevel.VILLAGE, parent_code="317101",
                              kind="kelurahan", list_version="a-newer-list")
        retired = reg.REGION_RETIRED.new(data, subject=CIDENG, regioncode=CIDENG)
        await producer.send_and_wait("posyandu.registry.v1", retired.to_bytes(), key=CIDENG.encode())
        url = f"/api/v1/households/{created['id']}"

        async def flagged() -> bool:
            return bool((await household.get(url, headers=tokens.kader([posyandu]))).json()["needs_reassignment"])

        await eventually(flagged, "the household to need reassignment", timeout=60, interval=0.2)
        refused = await household.post("/api/v1/households", json={
            "kk_number": kk_number(), "village_code": CIDENG, "posyandu_id": posyandu,
            "members": []}, headers=tokens.kader([posyandu]))
        assert refused.status_code == 422
        # The registry brings the village back: registrations there work again.
        back = reg.REGION_REGISTERED.new(data, subject=CIDENG, regioncode=CIDENG)
        await producer.send_and_wait("posyandu.registry.v1", back.to_bytes(), key=CIDENG.encode())

        async def current() -> bool:
            return not await household_db.fetchval("SELECT retired FROM known_regions WHERE code = $1", CIDENG)

        await eventually(current, "the village to be current again", timeout=60, interval=0.2)
    finally:
        await producer.stop()
