"""A village retired by the registry flags its households for re-assignment as a household change: a new version
and a `household.updated` event each (issue 17), once, whatever the redeliveries.

Regency 1601 (Ogan Komering Ulu) is reserved for these tests.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import date
from typing import Any

import asyncpg
import httpx
import orjson
from aiokafka import AIOKafkaProducer

from conftest import Stack
from services.household.tests.factories import kk_number, known_posyandu, member, nik, register
from shared.events import registry as reg
from shared.events.envelope import CloudEvent
from tests.support import tokens
from tests.support.documents import message_validator, messages_by_type, served

BATURAJA_LAMA = "1601011001"
BATURAJA_BARU = "1601011002"
REGIONS = (b"kode,nama\n16,Sumatera Selatan\n16.01,Ogan Komering Ulu\n16.01.01,Baturaja Timur\n"
           b"16.01.01.1001,Baturaja Lama\n16.01.01.1002,Baturaja Baru\n")
UPDATED = "posyandu.household.updated.v1"


async def _posyandu(registry: httpx.AsyncClient, household_db: asyncpg.Connection) -> str:
    imported = await registry.post("/api/v1/regions/import", content=REGIONS,
                                   headers={**tokens.admin(), "Content-Type": "text/csv"})
    assert imported.status_code == 200, imported.text
    deadline = time.monotonic() + 60
    while await household_db.fetchval("SELECT count(*) FROM known_regions WHERE code = ANY($1)",
                                      [BATURAJA_LAMA, BATURAJA_BARU]) < 2:
        assert time.monotonic() < deadline, "the household service never heard of the villages"
        await asyncio.sleep(0.1)
    return await known_posyandu(registry, household_db, BATURAJA_LAMA)


async def _household(household: httpx.AsyncClient, posyandu: str, village: str) -> dict[str, Any]:
    head = date(1980, 4, 9)
    return await register(household, posyandu, village_code=village, kk_number=kk_number(district="160101"),
                          members=[member("Rahmat", "male", head, "head", nik=nik(head, "male", "160101"))])


async def _updated_events(household_db: asyncpg.Connection, household_id: str) -> list[CloudEvent]:
    rows = await household_db.fetch("SELECT payload FROM outbox WHERE key = $1 AND event_type = $2 ORDER BY id",
                                    household_id, UPDATED)
    return [CloudEvent.from_bytes(row["payload"]) for row in rows]


async def _retire(producer: AIOKafkaProducer, name: str) -> None:
    data = reg.RegionData(code=BATURAJA_LAMA, name=name, level=reg.RegionLevel.VILLAGE, parent_code="160101",
                          kind="kelurahan", list_version=f"list-{uuid.uuid4().hex[:6]}")
    retired = reg.REGION_RETIRED.new(data, subject=BATURAJA_LAMA, regioncode=BATURAJA_LAMA)
    await producer.send_and_wait("posyandu.registry.v1", retired.to_bytes(), key=BATURAJA_LAMA.encode())


async def _until_named(household_db: asyncpg.Connection, name: str) -> None:
    """The retirement's region row and its households' flags are written in one transaction."""
    deadline = time.monotonic() + 90
    while await household_db.fetchval("SELECT name FROM known_regions WHERE code = $1", BATURAJA_LAMA) != name:
        assert time.monotonic() < deadline, "the household service never applied the retirement"
        await asyncio.sleep(0.2)


async def test_a_retired_village_flags_each_household_with_a_new_version_and_its_event(
        registry: httpx.AsyncClient, household: httpx.AsyncClient, household_db: asyncpg.Connection,
        stack: Stack) -> None:
    posyandu = await _posyandu(registry, household_db)
    flagged = await _household(household, posyandu, BATURAJA_LAMA)
    elsewhere = await _household(household, posyandu, BATURAJA_BARU)
    assert (flagged["version"], flagged["needs_reassignment"]) == (1, False)
    producer = AIOKafkaProducer(bootstrap_servers=stack.broker.bootstrap_servers)
    await producer.start()
    try:
        await _retire(producer, "Baturaja Lama (dihapus)")
        await _until_named(household_db, "Baturaja Lama (dihapus)")
        kader = tokens.kader([posyandu])
        now = await household.get(f"/api/v1/households/{flagged['id']}", headers=kader)
        assert (now.json()["needs_reassignment"], now.json()["version"]) == (True, 2)
        assert now.headers["etag"] == '"2"'
        [event] = await _updated_events(household_db, flagged["id"])
        assert (event.data["needs_reassignment"], event.data["version"]) == (True, 2)
        assert (event.subject, event.regioncode) == (flagged["id"], BATURAJA_LAMA)
        # The event is what the household service documents in its AsyncAPI document.
        document = await served("household", "/asyncapi.json")
        validator = message_validator(document, messages_by_type(document)[UPDATED])
        assert not list(validator.iter_errors(orjson.loads(event.to_bytes())))
        # A household of another village is not touched.
        other = await household.get(f"/api/v1/households/{elsewhere['id']}", headers=kader)
        assert (other.json()["needs_reassignment"], other.json()["version"]) == (False, 1)
        assert await _updated_events(household_db, elsewhere["id"]) == []

        # The retirement again (a registry republish, a new event id): the flagged household does not change again.
        await _retire(producer, "Baturaja Lama (arsip)")
        await _until_named(household_db, "Baturaja Lama (arsip)")
        again = await household.get(f"/api/v1/households/{flagged['id']}", headers=kader)
        assert again.json()["version"] == 2
        assert len(await _updated_events(household_db, flagged["id"])) == 1
    finally:
        await producer.stop()
