"""The household snapshot republish: reporting rebuilt from topics that hold only the republish (the household
topic's older records gone by retention) equals what the live consumer built, and the republish moves nothing
in reporting or referral.

The embedded broker cannot delete records by age, so retention is simulated: a fresh broker is given the
registry and referral topics as they are (kept forever / 365 days) and, of the household topic, only the
records of the republish; `python -m services.reporting rebuild` then replays it into an empty database.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition

from conftest import Stack
from deploy.local.embedded import EmbeddedBroker, free_port
from deploy.local.stack import create_topics
from services.household.settings import HouseholdSettings
from services.reporting.tables import PROJECTIONS
from shared.events.envelope import CloudEvent
from shared.events.topics import ALL_TOPICS, HOUSEHOLD_TOPIC
from tests.support import tokens
from tests.support.factories import known_posyandu
from tests.support.kafka import Received, read_topic
from tests.support.reporting import Reporting, private_reporting
from tests.support.waiting import eventually

ROOT = Path(__file__).resolve().parents[1]
# Gunungkidul and Sleman: the dashboard's tests count the households of Kulon Progo and Bantul.
REGIONS = ("kode,nama\n34,DI Yogyakarta\n34.03,Gunungkidul\n34.03.01,Wonosari\n34.03.01.2001,Baleharjo\n"
           "34.04,Sleman\n34.04.01,Moyudan\n34.04.01.2001,Sumberagung\n")
BALEHARJO, SUMBERAGUNG = "3403012001", "3404012001"
GROUP = "reporting-republish-test"
#: A snapshot's time is the stored time of the state (a row's created_at, a need's detected_at), the live event's
#: the moment its envelope was made in the same transaction: they differ by that transaction's duration.
SAME_MOMENT = timedelta(seconds=10)
#: The household event types the referral service consumes.
REFERRAL_TYPES = {"posyandu.household.registered.v1", "posyandu.member.added.v1",
                  "posyandu.household.need-detected.v1", "posyandu.household.need-resolved.v1"}


@pytest.fixture(scope="module")
async def live_reporting(stack: Stack) -> AsyncIterator[Reporting]:
    """A reporting service consuming the session's broker in a group of its own (the live consumer)."""
    async with private_reporting(stack, database="reporting_republish", group=GROUP) as reporting:
        yield reporting


@pytest.fixture(scope="module")
def fresh_broker() -> Iterator[EmbeddedBroker]:
    broker = EmbeddedBroker(free_port())
    broker.start()
    yield broker
    broker.stop()


def _nik(birth: date, sex: str, district: str, serial: int) -> str:
    return f"{district}{birth.day + (40 if sex == 'female' else 0):02d}{birth:%m%y}{serial:04d}"


async def _register(household: httpx.AsyncClient, posyandu: str, village: str, serial: int) -> dict[str, Any]:
    """A household with a mother and a baby (too young for a full schedule: the rules find needs for it)."""
    today = date.today()
    mother, baby = date(1995, 3, 14), today - timedelta(days=240)
    district = village[:6]
    body = {"kk_number": f"{district}1405{serial:06d}", "village_code": village, "posyandu_id": posyandu,
            "address": "Jl. Wates No. 1", "rt": "001", "rw": "001", "members": [
                {"name": "Sri Lestari", "sex": "female", "birth_date": mother.isoformat(), "relationship": "head",
                 "nik": _nik(mother, "female", district, serial)},
                {"name": "Bayu", "sex": "male", "birth_date": baby.isoformat(), "relationship": "child",
                 "nik": _nik(baby, "male", district, serial + 1)}]}
    response = await household.post("/api/v1/households", json=body, headers=tokens.kader([posyandu]))
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    baby_id = next(m["id"] for m in created["members"] if m["relationship"] == "child")
    measured = await household.post(f"/api/v1/households/{created['id']}/members/{baby_id}/measurements",
                                    json={"measured_on": today.isoformat(), "weight_kg": 5.1,
                                          "length_height_cm": 63.0, "measured_lying": True},
                                    headers=tokens.kader([posyandu]))
    assert measured.status_code == 201, measured.text
    return created


#: This test's regencies: the province, 34, also holds the dashboard tests' Kulon Progo and Bantul households.
OUR_REGENCIES = ("3403", "3404")


def _filter(table: str, columns: list[str], ours: dict[str, set[str]]) -> str | None:
    """The WHERE clause picking this test's rows of a projection (those of its two regencies, and the province's own
    region row; for the summaries its regions at the regency level and below, as the province and the nation sum
    every other test's regions too; the programmes of the province's agencies), or None for the whole table."""
    for column in ("village_code", "region_code", "jurisdiction_code", "code", "region"):
        if column in columns:
            ours_only = " OR ".join(f"{column} LIKE '{regency}%'" for regency in OUR_REGENCIES)
            return f"({ours_only} OR {column} = '34')" if table == "regions" else f"({ours_only})"
    if "agency_id" in columns:
        # An agency's rows (programmes, their realisations and target figures) are of the agencies of our province:
        # other tests register programmes elsewhere, whose events may arrive during this one.
        return ("agency_id IN (SELECT id FROM agencies WHERE jurisdiction_code = '34' OR "
                + " OR ".join(f"jurisdiction_code LIKE '{regency}%'" for regency in OUR_REGENCIES) + ")")
    for column, ids in (("household_id", ours["households"]), ("merged_id", ours["members"])):
        if column in columns:
            return f"{column}::text IN ({', '.join(repr(i) for i in sorted(ids)) or 'NULL'})"
    return None


async def _rows(dsn: str, ours: dict[str, set[str]]) -> dict[str, list[dict[str, Any]]]:
    """Every projection's rows of this test, sorted, as dicts."""
    conn = await asyncpg.connect(dsn)
    try:
        out = {}
        for table in PROJECTIONS:
            columns = [r["column_name"] for r in await conn.fetch(
                "SELECT column_name FROM information_schema.columns WHERE table_name = $1", table)]
            where = _filter(table, columns, ours)
            rows = await conn.fetch(f"SELECT * FROM {table}" + (f" WHERE {where}" if where else ""))
            out[table] = sorted((dict(r) for r in rows), key=lambda r: [str(r[c]) for c in sorted(r)])
        return out
    finally:
        await conn.close()


def _same(a: dict[str, list[dict[str, Any]]], b: dict[str, list[dict[str, Any]]]) -> None:
    """Row by row equal; a timestamp may differ by less than SAME_MOMENT (see above), nothing else."""
    assert a.keys() == b.keys()
    for table in a:
        assert len(a[table]) == len(b[table]), (table, a[table], b[table])
        for x, y in zip(a[table], b[table], strict=True):
            assert x.keys() == y.keys(), table
            for column in x:
                if isinstance(x[column], datetime) and isinstance(y[column], datetime):
                    assert abs(x[column] - y[column]) < SAME_MOMENT, (table, column, x, y)
                else:
                    assert x[column] == y[column], (table, column, x, y)


async def _inbox_has(dsn: str, ids: list[uuid.UUID]) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        async def done() -> bool:
            found = await conn.fetchval("SELECT count(DISTINCT event_id) FROM inbox WHERE consumer_group = $1 "
                                        "AND event_id = ANY($2::uuid[])", GROUP, ids)
            return bool(found == len(set(ids)))

        await eventually(done, "the live reporting consumer to apply the events", timeout=180)
    finally:
        await conn.close()


async def _referral_state(referral_db: asyncpg.Connection, households: set[str]) -> list[Any]:
    ids = [uuid.UUID(h) for h in households]
    referrals = await referral_db.fetch("SELECT id, need_id, status, version, need_resolved_at FROM referrals "
                                        "WHERE household_id = ANY($1::uuid[]) ORDER BY id", ids)
    notes = await referral_db.fetchval("SELECT count(*) FROM referral_notes n JOIN referrals r ON r.id = "
                                       "n.referral_id WHERE r.household_id = ANY($1::uuid[])", ids)
    known = await referral_db.fetch("SELECT id, status, version FROM known_households WHERE id = ANY($1::uuid[]) "
                                    "UNION ALL SELECT id, status, version FROM known_members "
                                    "WHERE household_id = ANY($1::uuid[]) ORDER BY 1", ids)
    return [[tuple(r) for r in referrals], notes, [tuple(r) for r in known]]


async def test_reporting_rebuilt_from_a_household_republish_equals_the_live_projections(
        registry: httpx.AsyncClient, household: httpx.AsyncClient, household_db: asyncpg.Connection,
        referral: httpx.AsyncClient, referral_db: asyncpg.Connection, live_reporting: Reporting, stack: Stack,
        fresh_broker: EmbeddedBroker) -> None:
    imported = await registry.post("/api/v1/regions/import", content=REGIONS.encode(),
                                   headers={**tokens.admin(), "Content-Type": "text/csv"})
    assert imported.status_code == 200, imported.text
    first = await known_posyandu(registry, household_db, BALEHARJO)
    second = await known_posyandu(registry, household_db, SUMBERAGUNG)
    serial = int(uuid.uuid4().int % 4000) * 2 + 1000
    made = [await _register(household, first, BALEHARJO, serial), await _register(household, second, SUMBERAGUNG,
                                                                                   serial + 2)]
    ours = {"households": {h["id"] for h in made}, "members": {m["id"] for h in made for m in h["members"]}}
    needs = await household_db.fetchval("SELECT count(*) FROM needs WHERE household_id = ANY($1::uuid[])",
                                        [uuid.UUID(h) for h in ours["households"]])
    assert needs, "the scenario should give the babies needs (so referrals and need rows are compared too)"

    # The live consumer has everything of ours (the household topic's events, and the referrals made of the needs).
    # It reads the session's whole history first, which late in a whole run is long: wait generously, and name the
    # counts still missing if it times out.
    async def live_counts() -> dict[str, int]:
        return {name: len(rows) for name, rows in (await _rows(live_reporting.db, ours)).items()}

    def has_ours(n: dict[str, int]) -> bool:
        return (n["regions"] == 7 and n["posyandu"] == 2 and n["households"] == 2 and n["members"] == 4
                and n["measurements"] == 2 and n["needs"] == needs and n["referrals"] >= 1)

    await eventually(live_counts, f"the live reporting consumer to project the households ({needs} needs)",
                     timeout=420, until=has_ours)
    await eventually(lambda: _referral_settled(referral_db, ours["households"], needs), "referrals of the needs")
    live = await _rows(live_reporting.db, ours)
    referral_before = await _referral_state(referral_db, ours["households"])

    # The admin API: admin only, as problem+json.
    for headers in (tokens.pembina("34"), tokens.kader([first]), tokens.service()):
        refused = await household.post("/api/v1/households/republish", headers=headers)
        assert refused.status_code == 403, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
    anonymous = await household.post("/api/v1/households/republish")
    assert anonymous.status_code == 401 and anonymous.headers["content-type"] == "application/problem+json"
    report = await household.post("/api/v1/households/republish", headers=tokens.admin())
    assert report.status_code == 200, report.text
    counts = report.json()
    assert counts["households"] >= 2 and counts["members"] >= 4 and counts["measurements"] >= 2
    assert counts["events"] >= counts["households"] + counts["members"] + counts["measurements"]

    # The republished events of our households reach the topic marked as snapshots, each at its state's time.
    snapshots = await _snapshots_of(stack.broker.bootstrap_servers, ours["households"],
                                    expected=await _state_count(household_db, ours["households"]))
    assert {e.type for e in snapshots} >= {"posyandu.household.registered.v1", "posyandu.member.added.v1",
                                           "posyandu.measurement.recorded.v1", "posyandu.household.need-detected.v1"}
    # Idempotent: once the live consumer has applied them, reporting and referral hold what they held.
    await _inbox_has(live_reporting.db, [e.id for e in snapshots])
    _same(await _rows(live_reporting.db, ours), live)
    await asyncio.sleep(2)  # the referral service consumes the same records; give it time to do something wrong
    handled = [e.id for e in snapshots if e.type in REFERRAL_TYPES]
    await eventually(lambda: _referral_consumed(referral_db, handled), "the referral service to consume them")
    assert await _referral_state(referral_db, ours["households"]) == referral_before

    # Retention simulated: a fresh broker with the registry and referral topics whole and, of the household topic,
    # only the republish; reporting rebuilt from it into an empty database equals the live projections.
    await create_topics(fresh_broker.bootstrap_servers, list(ALL_TOPICS))
    copied: dict[str, int] = {}
    producer = AIOKafkaProducer(bootstrap_servers=fresh_broker.bootstrap_servers, acks="all")
    await producer.start()
    try:
        for topic in ALL_TOPICS:
            copied[topic] = 0
            for record in await _read_all(stack.broker.bootstrap_servers, topic):
                if topic == HOUSEHOLD_TOPIC and not CloudEvent.from_bytes(record.value).snapshot:
                    continue  # older than the retention: gone
                await producer.send_and_wait(topic, value=record.value, key=record.key,
                                             headers=list(record.headers or ()))
                copied[topic] += 1
    finally:
        await producer.stop()
    dsn = await stack.migrated_database("reporting", "reporting_from_republish")
    env = {**os.environ, "DATABASE_URL": dsn, "KAFKA_BOOTSTRAP_SERVERS": fresh_broker.bootstrap_servers,
           "KAFKA_FETCH_MAX_WAIT_MS": "10", "ENVIRONMENT": "test", "LOG_LEVEL": "WARNING", "PYTHONPATH": str(ROOT)}
    process = await asyncio.create_subprocess_exec(sys.executable, "-m", "services.reporting", "rebuild", cwd=ROOT,
                                                   env=env, stdout=asyncio.subprocess.PIPE,
                                                   stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 300)
    assert process.returncode == 0, err.decode()
    assert copied[HOUSEHOLD_TOPIC] >= len(snapshots) and "projections rebuilt from" in out.decode()
    _same(await _rows(dsn, ours), live)


async def _snapshots_of(bootstrap: str, households: set[str], expected: int) -> list[CloudEvent]:
    def ours(received: list[Received]) -> list[CloudEvent]:
        return [r.event for r in received if r.event is not None and r.event.snapshot and r.event.subject in households]

    return ours(await read_topic(bootstrap, HOUSEHOLD_TOPIC, until=lambda rs: len(ours(rs)) >= expected, timeout=120))


async def _read_all(bootstrap: str, topic: str) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record of a topic, read until nothing more comes for a few seconds. Not up to the end offsets: the
    embedded broker (Tansu) reports a partition's end as its last record batch's first offset plus one."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                fetch_max_wait_ms=10)
    await consumer.start()
    try:
        await consumer.topics()
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        records: list[ConsumerRecord[bytes, bytes]] = []
        idle = 0
        while idle < 15:
            fetched = [r for batch in (await consumer.getmany(timeout_ms=200)).values() for r in batch]
            records += fetched
            idle = 0 if fetched else idle + 1
        return records
    finally:
        await consumer.stop()


async def _referral_settled(referral_db: asyncpg.Connection, households: set[str], needs: int) -> bool:
    """Every need of ours has reached the referral service (a referral, or a draft, per need)."""
    made = await referral_db.fetchval("SELECT count(*) FROM referrals WHERE household_id = ANY($1::uuid[]) "
                                      "AND need_id IS NOT NULL", [uuid.UUID(h) for h in households])
    return bool(made == needs)


async def _referral_consumed(referral_db: asyncpg.Connection, ids: list[uuid.UUID]) -> bool:
    found = await referral_db.fetchval("SELECT count(DISTINCT event_id) FROM inbox WHERE event_id = ANY($1::uuid[])",
                                       ids)
    return bool(found == len(set(ids)))


async def _state_count(household_db: asyncpg.Connection, households: set[str]) -> int:
    """The snapshot events a republish makes of these households (one per row, two per resolved need)."""
    ids = [uuid.UUID(h) for h in households]
    total = len(ids)
    for table in ("members", "profile_versions", "measurements", "needs", "visits", "immunization_doses"):
        total += await household_db.fetchval(f"SELECT count(*) FROM {table} WHERE household_id = ANY($1::uuid[])",
                                             ids)
    total += await household_db.fetchval("SELECT count(*) FROM needs WHERE household_id = ANY($1::uuid[]) AND "
                                         "resolved_at IS NOT NULL", ids)
    total += await household_db.fetchval("SELECT count(*) FROM members WHERE household_id = ANY($1::uuid[]) AND "
                                         "merged_into IS NOT NULL", ids)
    return int(total)



async def test_the_republish_command_walks_every_household_in_chunks(
        registry: httpx.AsyncClient, household: httpx.AsyncClient, household_settings: HouseholdSettings,
        household_db: asyncpg.Connection) -> None:
    imported = await registry.post("/api/v1/regions/import", content=REGIONS.encode(),
                                   headers={**tokens.admin(), "Content-Type": "text/csv"})
    assert imported.status_code == 200, imported.text
    posyandu = await known_posyandu(registry, household_db, SUMBERAGUNG)
    for _ in range(2):
        await _register(household, posyandu, SUMBERAGUNG, int(uuid.uuid4().int % 4000) * 2 + 1000)
    env = {**os.environ, "DATABASE_URL": household_settings.database_url,
           "KAFKA_BOOTSTRAP_SERVERS": household_settings.kafka_bootstrap_servers, "ENVIRONMENT": "test",
           "LOG_LEVEL": "WARNING", "PYTHONPATH": str(ROOT)}

    async def run(*args: str) -> tuple[int, str, str]:
        process = await asyncio.create_subprocess_exec(sys.executable, "-m", "services.household", "republish", *args,
                                                       cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE,
                                                       stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(process.communicate(), 300)
        return int(process.returncode or 0), out.decode(), err.decode()

    code, _, err = await run("--chunk-size", "0")
    assert code != 0 and "--chunk-size must be between 1 and 10000" in err
    households = await household_db.fetchval("SELECT count(*) FROM households")
    members = await household_db.fetchval("SELECT count(*) FROM members")
    assert households >= 2
    code, out, err = await run("--chunk-size", "50")  # many transactions: the keyset walk crosses them all
    assert code == 0, err
    report = json.loads(out)
    assert report["households"] >= households and report["members"] >= members
