"""Life events, one test each: a death, a departure, a move to a known household, a split, a merge, a closing.

Each checks what the household service holds after it (state, life-event and audit rows, needs), its events on
posyandu.household.v1, what the referral service did with it through the broker (referrals closed or moved, their
history and their events on the field topic) and the reporting service's counts of households and members, and
that bad input is refused with a problem and changes nothing.

Kota Surabaya (3578, Jawa Timur) and Kota Batu (3579) are this module's own: their regions are imported here, each
test registers in a village of its own (so the counts it reads are its own) and their agencies are the only ones of
their fields there. The reporting service runs on the session's broker for this module only.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import AsyncIterator
from datetime import date, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer
from asgi_lifespan import LifespanManager

from conftest import Stack, service_settings
from services.reporting.app import create_app as create_reporting_app
from services.reporting.settings import ReportingSettings
from shared.events.envelope import CloudEvent
from shared.events.topics import HOUSEHOLD_TOPIC, referral_topic
from tests.support import tokens
from tests.support.factories import known_agency, known_posyandu
from tests.support.kafka import read_topic
from tests.support.waiting import eventually

REGIONS_CSV = """kode,nama
35,Jawa Timur
35.78,Kota Surabaya
35.78.01,Genteng
35.78.01.1001,Embong Kaliasin
35.78.01.1002,Ketabang
35.78.01.1003,Peneleh
35.78.01.1004,Genteng
35.78.01.1005,Kapasari
35.78.01.1006,Tambaksari
35.79,Kota Batu
35.79.01,Batu
35.79.01.1001,Sisir
"""
#: One village per test: the reporting counts each test reads are its own.
DEATH, MOVE_OUT, MARRIAGE, SPLIT, MERGE, CLOSE = (f"357801100{i}" for i in range(1, 7))
SISIR = "3579011001"  # Kota Batu: another regency, so another kesehatan agency
TODAY = date.today()
_kk_serial = itertools.count(1)


def _kk(district: str) -> str:
    return f"{district}140519{next(_kk_serial) + 7000:04d}"


def _person(name: str, years: int, sex: str = "male", relationship: str = "head") -> dict[str, Any]:
    return {"name": name, "sex": sex, "birth_date": date(TODAY.year - years, 3, 14).isoformat(),
            "relationship": relationship}


def _pregnant_teen(name: str) -> dict[str, Any]:
    """A pregnant 17-year-old: the rules detect kesehatan.high-risk-pregnancy for her (a member's need)."""
    return {**_person(name, 17, "female", "child"), "pregnant": True,
            "expected_delivery_date": (TODAY + timedelta(days=100)).isoformat()}


class World:
    def __init__(self, posyandu: dict[str, str], agencies: dict[str, str]) -> None:
        self.posyandu, self.agencies = posyandu, agencies


@pytest.fixture(scope="module")
async def world(registry: httpx.AsyncClient, household: httpx.AsyncClient, household_settings: Any,
                referral_settings: Any, referral: httpx.AsyncClient) -> World:
    imported = await registry.post("/api/v1/regions/import", content=REGIONS_CSV,
                                   headers={**tokens.admin(), "Content-Type": "text/csv"})
    assert imported.status_code == 200, imported.text
    household_db = await asyncpg.connect(household_settings.database_url)
    referral_db = await asyncpg.connect(referral_settings.database_url)
    try:
        async def villages_known() -> bool:
            return bool(await household_db.fetchval(
                "SELECT count(*) FROM known_regions WHERE code IN ($1, $2)", CLOSE, SISIR) == 2)

        await eventually(villages_known, "the household service to learn the villages", timeout=90)
        posyandu = {v: await known_posyandu(registry, household_db, v)
                    for v in (DEATH, MOVE_OUT, MARRIAGE, SPLIT, MERGE, CLOSE, SISIR)}
        agencies = {"kesehatan-3578": await known_agency(registry, referral_db, "3578", ["kesehatan"]),
                    "kesehatan-3579": await known_agency(registry, referral_db, "3579", ["kesehatan"]),
                    "pekerjaan-umum-3578": await known_agency(registry, referral_db, "3578", ["pekerjaan-umum"])}
    finally:
        await household_db.close()
        await referral_db.close()
    return World(posyandu, agencies)


@pytest.fixture(scope="module")
async def reporting(stack: Stack) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """The reporting service on the session's broker (its tests run it on a broker of their own)."""
    dsn = await stack.migrated_database("reporting", "reporting_life_events")
    app = create_reporting_app(ReportingSettings(**service_settings(stack, dsn)))
    async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30) as manager:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app),
                                     base_url="http://reporting") as client:
            yield client, dsn


async def _register(household: httpx.AsyncClient, world: World, village: str,
                    members: list[dict[str, Any]]) -> dict[str, Any]:
    posyandu = world.posyandu[village]
    response = await household.post("/api/v1/households", headers=tokens.kader([posyandu]), json={
        "kk_number": _kk(village[:6]), "village_code": village, "posyandu_id": posyandu, "members": members})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def _member(created: dict[str, Any], name: str) -> dict[str, Any]:
    return next(m for m in created["members"] if m["name"] == name)


async def _counts(reporting: tuple[httpx.AsyncClient, str], village: str) -> tuple[int, int]:
    response = await reporting[0].get("/api/v1/indicators", params={"region": village, "period": f"{TODAY:%Y-%m}"},
                                      headers=tokens.admin())
    assert response.status_code == 200, response.text
    rows = response.json()["rows"]
    return (rows[0]["coverage.households"], rows[0]["coverage.members"]) if rows else (0, 0)


async def _counts_become(reporting: tuple[httpx.AsyncClient, str], village: str, expected: tuple[int, int]) -> None:
    async def reached() -> bool:
        return await _counts(reporting, village) == expected

    await eventually(reached, f"the reporting counts of {village} to become {expected}", timeout=120)


async def _referral_of_need(referral_db: asyncpg.Connection, member_id: str) -> asyncpg.Record:
    async def found() -> asyncpg.Record | None:
        return await referral_db.fetchrow("SELECT * FROM referrals WHERE member_id = $1 AND origin = 'need'",
                                          uuid.UUID(member_id))

    return await eventually(found, "the referral of the member's need")


async def _referral_becomes(referral_db: asyncpg.Connection, referral_id: uuid.UUID,
                            **expected: Any) -> asyncpg.Record:
    async def reached() -> asyncpg.Record | None:
        row = await referral_db.fetchrow("SELECT * FROM referrals WHERE id = $1", referral_id)
        return row if row is not None and all(row[k] == v for k, v in expected.items()) else None

    return await eventually(reached, f"referral {referral_id} to become {expected}")


async def _household_event(stack: Stack, household_id: str, event_type: str, count: int = 1) -> list[CloudEvent]:
    """The events of this type about the household on posyandu.household.v1 (waiting for `count` of them)."""
    def of_type(received: list[Any]) -> list[CloudEvent]:
        return [r.event for r in received if r.event is not None and r.event.subject == household_id
                and r.event.type == event_type]

    received = await read_topic(stack.broker.bootstrap_servers, HOUSEHOLD_TOPIC,
                                until=lambda rs: len(of_type(rs)) >= count, timeout=60)
    return of_type(received)


async def _field_event(stack: Stack, field: str, referral_id: uuid.UUID, action: str) -> CloudEvent:
    def matching(received: list[Any]) -> list[CloudEvent]:
        return [r.event for r in received if r.event is not None and r.event.subject == str(referral_id)
                and (r.event.data or {}).get("action") == action]

    received = await read_topic(stack.broker.bootstrap_servers, referral_topic(field),
                                until=lambda rs: bool(matching(rs)), timeout=60)
    return matching(received)[-1]


async def _unchanged(household_db: asyncpg.Connection, member_id: str, status: str, version: int) -> None:
    row = await household_db.fetchrow("SELECT status, version FROM members WHERE id = $1", uuid.UUID(member_id))
    assert (row["status"], row["version"]) == (status, version)


def _problem(response: httpx.Response, status: int, field: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    if field is not None:
        assert field in [e["field"] for e in body["errors"]], body
    return body


async def test_a_death_closes_the_members_referral_resolves_its_needs_and_moves_the_counts(
        world: World, reporting: tuple[httpx.AsyncClient, str], household: httpx.AsyncClient,
        referral: httpx.AsyncClient, household_db: asyncpg.Connection, referral_db: asyncpg.Connection,
        stack: Stack) -> None:
    created = await _register(household, world, DEATH, [_person("Bambang Wijaya", 45), _pregnant_teen("Sri Wijaya")])
    sri = _member(created, "Sri Wijaya")
    kader = tokens.kader([world.posyandu[DEATH]])
    row = await _referral_of_need(referral_db, sri["id"])
    assert (row["category"], row["status"], str(row["agency_id"])) == (
        "kesehatan.high-risk-pregnancy", "requested", world.agencies["kesehatan-3578"])
    await _counts_become(reporting, DEATH, (1, 2))
    path = f"/api/v1/households/{created['id']}/members/{sri['id']}/death"

    # Bad input: nothing changes.
    _problem(await household.post(path, json={"date_of_death": "2000-01-01"}, headers=kader), 422,
             "body.date_of_death")  # before her birth
    _problem(await household.post(path, json={"date_of_death": (TODAY + timedelta(days=3)).isoformat()},
                                  headers=kader), 422, "body.date_of_death")
    _problem(await household.post(path, json={"date_of_death": TODAY.isoformat(), "cause_category": "curse"},
                                  headers=kader), 422)
    _problem(await household.post(path, json={"date_of_death": TODAY.isoformat()},
                                  headers={**kader, "If-Match": '"7"'}), 412)
    await _unchanged(household_db, sri["id"], "active", 1)
    assert not await household_db.fetchval("SELECT count(*) FROM life_events WHERE member_id = $1",
                                           uuid.UUID(sri["id"]))

    died = await household.post(path, json={"date_of_death": TODAY.isoformat(), "cause_category": "maternal"},
                                headers={**kader, "If-Match": '"1"'})
    assert died.status_code == 200, died.text
    assert (died.json()["status"], died.json()["version"], died.headers["ETag"]) == ("deceased", 2, '"2"')

    # State: the member is deceased (and no longer listed), the event recorded, an audit row, the need resolved.
    assert await household_db.fetchval("SELECT status FROM members WHERE id = $1", uuid.UUID(sri["id"])) == "deceased"
    event_row = await household_db.fetchrow("SELECT * FROM life_events WHERE member_id = $1", uuid.UUID(sri["id"]))
    assert (event_row["kind"], event_row["occurred_on"], event_row["cause_category"]) == ("died", TODAY, "maternal")
    assert await household_db.fetchval(
        "SELECT count(*) FROM audit_log WHERE action = 'record-death' AND resource_id = $1 AND subject_ref = $2",
        sri["id"], created["id"]) == 1
    need = await household_db.fetchrow("SELECT status, resolution FROM needs WHERE member_id = $1",
                                       uuid.UUID(sri["id"]))
    assert (need["status"], need["resolution"]) == ("resolved", "deceased")
    detail = (await household.get(f"/api/v1/households/{created['id']}", headers=kader)).json()
    assert [m["name"] for m in detail["members"]] == ["Bambang Wijaya"]
    listed = await household.get(f"/api/v1/households/{created['id']}/life-events", headers=kader)
    assert listed.status_code == 200, listed.text
    [item] = listed.json()["items"]
    assert (item["kind"], item["member_id"], item["occurred_on"], item["cause_category"]) == (
        "died", sri["id"], TODAY.isoformat(), "maternal")
    assert await household_db.fetchval("SELECT count(*) FROM audit_log WHERE action = 'read' AND resource_type = "
                                       "'life-events' AND subject_ref = $1", created["id"]) == 1

    # Events: the death, then the need's resolution with its reason; no NIK, no name.
    [event] = await _household_event(stack, created["id"], "posyandu.member.died.v1")
    assert event.data["member_id"] == sri["id"] and event.data["status"] == "deceased"
    assert (event.data["date_of_death"], event.data["cause_category"], event.data["version"]) == (
        TODAY.isoformat(), "maternal", 2)
    assert "Sri" not in event.to_bytes().decode()
    [resolved] = await _household_event(stack, created["id"], "posyandu.household.need-resolved.v1")
    assert resolved.data["member_id"] == sri["id"] and resolved.data["resolution"] == "deceased"
    types = [r["event_type"] for r in await household_db.fetch(
        "SELECT event_type FROM outbox WHERE key = $1 ORDER BY id", created["id"])]
    assert types.index("posyandu.member.died.v1") < types.index("posyandu.household.need-resolved.v1")

    # Referral: cancelled by the system for that reason, with its history entry and its event on the field topic.
    closed = await _referral_becomes(referral_db, row["id"], status="cancelled")
    assert closed["closed_at"] is not None and closed["need_resolved_at"] is None  # closed before the note
    history = await referral_db.fetchrow("SELECT * FROM referral_transitions WHERE referral_id = $1 "
                                         "ORDER BY id DESC LIMIT 1", row["id"])
    assert (history["action"], history["actor"], history["from_status"], history["to_status"]) == (
        "deceased", "system", "requested", "cancelled")
    assert TODAY.isoformat() in history["reason"]
    on_topic = await _field_event(stack, "kesehatan", row["id"], "deceased")
    assert on_topic.type == "posyandu.referral.status-changed.v1" and on_topic.data["status"] == "cancelled"
    assert on_topic.data["agency_id"] == world.agencies["kesehatan-3578"]

    # Reporting: one household, one resident member.
    await _counts_become(reporting, DEATH, (1, 1))

    # The death delivered again (the same event, and a replay under a new id) moves nothing twice.
    # So does her older `member.added` (still active, version 1) arriving late under a new id.
    payload = await household_db.fetchval("SELECT payload FROM outbox WHERE event_id = $1", event.id)
    replay = CloudEvent.model_validate({**CloudEvent.from_bytes(payload).model_dump(), "id": uuid.uuid4()})
    added = next(e for e in [CloudEvent.from_bytes(r["payload"]) for r in await household_db.fetch(
        "SELECT payload FROM outbox WHERE key = $1 AND event_type = 'posyandu.member.added.v1'", created["id"])]
        if e.data["member_id"] == sri["id"])
    late = CloudEvent.model_validate({**added.model_dump(), "id": uuid.uuid4()})
    producer = AIOKafkaProducer(bootstrap_servers=stack.broker.bootstrap_servers)
    await producer.start()
    try:
        for value in (payload, late.to_bytes(), replay.to_bytes()):
            await producer.send_and_wait(HOUSEHOLD_TOPIC, value, key=created["id"].encode())
    finally:
        await producer.stop()
    reporting_db = await asyncpg.connect(reporting[1])
    try:
        async def replayed() -> bool:
            return bool(await reporting_db.fetchval("SELECT count(*) FROM inbox WHERE event_id = $1", replay.id)
                        and await referral_db.fetchval("SELECT count(*) FROM inbox WHERE event_id = $1", replay.id))

        await eventually(replayed, "the replay to be consumed by reporting and referral")
    finally:
        await reporting_db.close()
    assert await _counts(reporting, DEATH) == (1, 1)
    assert await referral_db.fetchval("SELECT status FROM known_members WHERE id = $1",
                                      uuid.UUID(sri["id"])) == "deceased"
    assert await referral_db.fetchval("SELECT count(*) FROM referral_transitions WHERE referral_id = $1 "
                                      "AND action = 'deceased'", row["id"]) == 1

    # A deceased member cannot die again, move out or move.
    _problem(await household.post(path, json={"date_of_death": TODAY.isoformat()}, headers=kader), 409)
    _problem(await household.post(f"/api/v1/households/{created['id']}/members/{sri['id']}/move-out",
                                  json={"moved_out_on": TODAY.isoformat()}, headers=kader), 409)
    other = await _register(household, world, DEATH, [_person("Hadi Susilo", 50)])
    _problem(await household.post(f"/api/v1/households/{created['id']}/members/{sri['id']}/move",
                                  json={"to_household_id": other["id"], "moved_on": TODAY.isoformat()},
                                  headers=kader), 409)
    await _unchanged(household_db, sri["id"], "deceased", 2)


async def test_moving_out_of_the_area_closes_the_members_referral_and_it_no_longer_counts(
        world: World, reporting: tuple[httpx.AsyncClient, str], household: httpx.AsyncClient,
        referral: httpx.AsyncClient, household_db: asyncpg.Connection, referral_db: asyncpg.Connection,
        stack: Stack) -> None:
    created = await _register(household, world, MOVE_OUT,
                              [_person("Agus Pratama", 40), _pregnant_teen("Dewi Pratama")])
    dewi = _member(created, "Dewi Pratama")
    kader = tokens.kader([world.posyandu[MOVE_OUT]])
    row = await _referral_of_need(referral_db, dewi["id"])
    await _counts_become(reporting, MOVE_OUT, (1, 2))
    path = f"/api/v1/households/{created['id']}/members/{dewi['id']}/move-out"

    _problem(await household.post(path, json={"moved_out_on": (TODAY + timedelta(days=5)).isoformat()},
                                  headers=kader), 422, "body.moved_out_on")
    _problem(await household.post(path, json={"moved_out_on": TODAY.isoformat(), "destination_region_code": "3X"},
                                  headers=kader), 422)
    _problem(await household.post(path, json={"moved_out_on": TODAY.isoformat()},
                                  headers={**kader, "If-Match": '"2"'}), 412)
    await _unchanged(household_db, dewi["id"], "active", 1)

    left = await household.post(path, json={"moved_out_on": TODAY.isoformat(), "destination_region_code": "3171"},
                                headers={**kader, "If-Match": '"1"'})
    assert left.status_code == 200, left.text
    assert left.json()["status"] == "moved-out"
    event_row = await household_db.fetchrow("SELECT * FROM life_events WHERE member_id = $1", uuid.UUID(dewi["id"]))
    assert (event_row["kind"], event_row["destination_region_code"]) == ("moved-out", "3171")
    need = await household_db.fetchrow("SELECT status, resolution FROM needs WHERE member_id = $1",
                                       uuid.UUID(dewi["id"]))
    assert (need["status"], need["resolution"]) == ("resolved", "moved-out")

    [event] = await _household_event(stack, created["id"], "posyandu.member.moved-out.v1")
    assert (event.data["member_id"], event.data["status"], event.data["destination_region_code"]) == (
        dewi["id"], "moved-out", "3171")

    await _referral_becomes(referral_db, row["id"], status="cancelled")
    on_topic = await _field_event(stack, "kesehatan", row["id"], "moved-out")
    assert on_topic.data["status"] == "cancelled"
    await _counts_become(reporting, MOVE_OUT, (1, 1))


async def test_a_member_marrying_into_a_household_elsewhere_takes_needs_and_referral_to_the_new_route(
        world: World, reporting: tuple[httpx.AsyncClient, str], household: httpx.AsyncClient,
        referral: httpx.AsyncClient, household_db: asyncpg.Connection, referral_db: asyncpg.Connection,
        stack: Stack) -> None:
    home = await _register(household, world, MARRIAGE, [_person("Joko Santoso", 48), _pregnant_teen("Rina Santoso")])
    groom = await _register(household, world, SISIR, [_person("Eko Saputra", 22)])
    rina = _member(home, "Rina Santoso")
    row = await _referral_of_need(referral_db, rina["id"])
    assert str(row["agency_id"]) == world.agencies["kesehatan-3578"]
    await _counts_become(reporting, MARRIAGE, (1, 2))
    await _counts_become(reporting, SISIR, (1, 1))
    path = f"/api/v1/households/{home['id']}/members/{rina['id']}/move"
    both = tokens.kader([world.posyandu[MARRIAGE], world.posyandu[SISIR]])
    body = {"to_household_id": groom["id"], "moved_on": TODAY.isoformat(), "reason": "marriage"}

    _problem(await household.post(path, json={**body, "to_household_id": home["id"]}, headers=both), 422,
             "body.to_household_id")
    _problem(await household.post(path, json={**body, "to_household_id": str(uuid.uuid4())}, headers=both), 404)
    # The caller must be able to change both households: the home kader alone may not add to the groom's.
    _problem(await household.post(path, json=body, headers=tokens.kader([world.posyandu[MARRIAGE]])), 404)
    _problem(await household.post(path, json={**body, "moved_on": "1990-01-01"}, headers=both), 422,
             "body.moved_on")
    _problem(await household.post(path, json=body, headers={**both, "If-Match": '"5"'}), 412)
    await _unchanged(household_db, rina["id"], "active", 1)

    moved = await household.post(path, json=body, headers={**both, "If-Match": '"1"'})
    assert moved.status_code == 200, moved.text
    assert (moved.json()["household_id"], moved.json()["status"], moved.json()["version"]) == (
        groom["id"], "active", 2)

    # Her open need went with her (the same need, still open), and no new one was detected for her.
    needs = await household_db.fetch("SELECT * FROM needs WHERE member_id = $1", uuid.UUID(rina["id"]))
    assert [(str(n["household_id"]), n["status"]) for n in needs] == [(groom["id"], "open")]
    assert needs[0]["id"] == row["need_id"]
    assert await household_db.fetchval("SELECT count(*) FROM audit_log WHERE action = 'record-move-marriage' "
                                       "AND resource_id = $1", rina["id"]) == 2  # one per household

    [event] = await _household_event(stack, home["id"], "posyandu.member.moved.v1")
    assert (event.data["from_household_id"], event.data["household_id"], event.data["reason"]) == (
        home["id"], groom["id"], "marriage")
    assert event.data["moved_need_ids"] == [str(row["need_id"])] and event.data["village_code"] == SISIR

    # Her referral follows her to the new household and, the route having changed, to Kota Batu's agency.
    followed = await _referral_becomes(referral_db, row["id"], household_id=uuid.UUID(groom["id"]),
                                       village_code=SISIR)
    assert str(followed["agency_id"]) == world.agencies["kesehatan-3579"] and followed["status"] == "requested"
    on_topic = await _field_event(stack, "kesehatan", row["id"], "household-move")
    assert on_topic.data["agency_id"] == world.agencies["kesehatan-3579"]
    assert on_topic.data["previous_agency_id"] == world.agencies["kesehatan-3578"]
    assert on_topic.data["household_id"] == groom["id"]

    await _counts_become(reporting, MARRIAGE, (1, 1))
    await _counts_become(reporting, SISIR, (1, 2))


async def test_a_split_makes_a_new_household_the_members_and_their_referral_move_to(
        world: World, reporting: tuple[httpx.AsyncClient, str], household: httpx.AsyncClient,
        referral: httpx.AsyncClient, household_db: asyncpg.Connection, referral_db: asyncpg.Connection,
        stack: Stack) -> None:
    source = await _register(household, world, SPLIT, [
        _person("Slamet Riyadi", 55), _person("Wati Riyadi", 52, "female", "spouse"),
        _person("Andi Riyadi", 24, "male", "child"), _pregnant_teen("Lia Riyadi")])
    andi, lia = _member(source, "Andi Riyadi"), _member(source, "Lia Riyadi")
    row = await _referral_of_need(referral_db, lia["id"])
    await _counts_become(reporting, SPLIT, (1, 4))
    kader = tokens.kader([world.posyandu[SPLIT]])
    path = f"/api/v1/households/{source['id']}/split"
    body = {"kk_number": _kk(SPLIT[:6]), "member_ids": [andi["id"], lia["id"]], "moved_on": TODAY.isoformat(),
            "reason": "marriage"}

    everyone = [m["id"] for m in source["members"]]
    _problem(await household.post(path, json={**body, "member_ids": everyone}, headers=kader), 422,
             "body.member_ids")
    _problem(await household.post(path, json={**body, "member_ids": [andi["id"], andi["id"]]}, headers=kader), 422,
             "body.member_ids")
    _problem(await household.post(path, json={**body, "member_ids": [str(uuid.uuid4())]}, headers=kader), 422,
             "body.member_ids.0")
    _problem(await household.post(path, json={**body, "kk_number": source["kk_number"]}, headers=kader), 409)
    _problem(await household.post(path, json=body, headers={**kader, "If-Match": '"9"'}), 412)
    assert await household_db.fetchval("SELECT count(*) FROM households WHERE kk_number = $1",
                                       body["kk_number"]) == 0
    await _unchanged(household_db, andi["id"], "active", 1)

    split = await household.post(path, json=body, headers={**kader, "If-Match": '"1"'})
    assert split.status_code == 201, split.text
    new = split.json()
    assert new["kk_number"] == body["kk_number"] and new["village_code"] == SPLIT
    assert sorted(m["name"] for m in new["members"]) == ["Andi Riyadi", "Lia Riyadi"]
    left = (await household.get(f"/api/v1/households/{source['id']}", headers=kader)).json()
    assert sorted(m["name"] for m in left["members"]) == ["Slamet Riyadi", "Wati Riyadi"]
    assert left["version"] == 2
    assert await household_db.fetchval("SELECT household_id FROM needs WHERE id = $1", row["need_id"]) == uuid.UUID(
        new["id"])

    [registered] = await _household_event(stack, new["id"], "posyandu.household.registered.v1")
    assert registered.data["household_id"] == new["id"]
    moves = await _household_event(stack, source["id"], "posyandu.member.moved.v1", count=2)
    assert sorted(e.data["member_id"] for e in moves) == sorted([andi["id"], lia["id"]])
    assert {(e.data["household_id"], e.data["reason"]) for e in moves} == {(new["id"], "marriage")}

    # The referral follows her to the new household; same place, so the same agency, with a history entry.
    followed = await _referral_becomes(referral_db, row["id"], household_id=uuid.UUID(new["id"]))
    assert str(followed["agency_id"]) == world.agencies["kesehatan-3578"] and followed["status"] == "requested"
    on_topic = await _field_event(stack, "kesehatan", row["id"], "member-move")
    assert on_topic.data["household_id"] == new["id"]

    await _counts_become(reporting, SPLIT, (2, 4))


async def test_a_merge_moves_every_member_closes_the_household_and_its_own_referral(
        world: World, reporting: tuple[httpx.AsyncClient, str], household: httpx.AsyncClient,
        referral: httpx.AsyncClient, household_db: asyncpg.Connection, referral_db: asyncpg.Connection,
        stack: Stack) -> None:
    source = await _register(household, world, MERGE, [_person("Yanti Kusuma", 70, "female")])
    target = await _register(household, world, MERGE, [_person("Rudi Kusuma", 45), _person("Maya Kusuma", 40,
                                                                                           "female", "spouse")])
    kader = tokens.kader([world.posyandu[MERGE]])
    toilet = await household.put(f"/api/v1/households/{source['id']}/profiles/pekerjaan-umum",
                                 json={"household": {"toilet": "none"}}, headers=kader)
    assert toilet.status_code == 201, toilet.text

    async def sanitation() -> asyncpg.Record | None:
        return await referral_db.fetchrow("SELECT * FROM referrals WHERE household_id = $1",
                                          uuid.UUID(source["id"]))

    row = await eventually(sanitation, "the sanitation referral")
    assert str(row["agency_id"]) == world.agencies["pekerjaan-umum-3578"]
    await _counts_become(reporting, MERGE, (2, 3))
    path = f"/api/v1/households/{source['id']}/merge"
    body = {"into_household_id": target["id"], "merged_on": TODAY.isoformat()}
    version = (await household.get(f"/api/v1/households/{source['id']}", headers=kader)).json()["version"]

    _problem(await household.post(path, json={**body, "into_household_id": source["id"]}, headers=kader), 422,
             "body.into_household_id")
    _problem(await household.post(path, json={**body, "merged_on": "1899-12-31"}, headers=kader), 422,
             "body.merged_on")
    _problem(await household.post(path, json=body, headers={**kader, "If-Match": f'"{version + 1}"'}), 412)
    assert await household_db.fetchval("SELECT status FROM households WHERE id = $1",
                                       uuid.UUID(source["id"])) == "active"

    merged = await household.post(path, json=body, headers={**kader, "If-Match": f'"{version}"'})
    assert merged.status_code == 200, merged.text
    assert merged.json()["id"] == target["id"]
    assert sorted(m["name"] for m in merged.json()["members"]) == ["Maya Kusuma", "Rudi Kusuma", "Yanti Kusuma"]
    closed = await household_db.fetchrow("SELECT status, version FROM households WHERE id = $1",
                                         uuid.UUID(source["id"]))
    assert (closed["status"], closed["version"]) == ("closed", version + 1)
    life = await household_db.fetchrow("SELECT * FROM life_events WHERE household_id = $1 AND kind = 'closed'",
                                       uuid.UUID(source["id"]))
    assert (life["reason"], str(life["to_household_id"])) == ("merged", target["id"])
    need = await household_db.fetchrow("SELECT status, resolution FROM needs WHERE household_id = $1",
                                       uuid.UUID(source["id"]))
    assert (need["status"], need["resolution"]) == ("resolved", "household-closed")

    # The household merged into lists the move and the closing (a page at a time).
    first = (await household.get(f"/api/v1/households/{target['id']}/life-events", params={"limit": 1},
                                 headers=kader)).json()
    second = (await household.get(f"/api/v1/households/{target['id']}/life-events",
                                  params={"limit": 1, "cursor": first["next_cursor"]}, headers=kader)).json()
    assert [(e["kind"], e["reason"], e["to_household_id"]) for e in first["items"] + second["items"]] == [
        ("moved", "merge", target["id"]), ("closed", "merged", target["id"])]
    assert second["next_cursor"] is None

    [event] = await _household_event(stack, source["id"], "posyandu.household.closed.v1")
    assert (event.data["status"], event.data["reason"], event.data["merged_into_household_id"]) == (
        "closed", "merged", target["id"])
    [moved] = await _household_event(stack, source["id"], "posyandu.member.moved.v1")
    assert (moved.data["reason"], moved.data["household_id"]) == ("merge", target["id"])

    await _referral_becomes(referral_db, row["id"], status="cancelled")
    on_topic = await _field_event(stack, "pekerjaan-umum", row["id"], "household-closed")
    assert on_topic.data["status"] == "cancelled"
    await _counts_become(reporting, MERGE, (1, 3))

    # A closed household takes nothing more: no second merge, no closing, no update.
    _problem(await household.post(path, json=body, headers=kader), 409)
    _problem(await household.post(f"/api/v1/households/{source['id']}/close",
                                  json={"closed_on": TODAY.isoformat()}, headers=kader), 409)
    _problem(await household.patch(f"/api/v1/households/{source['id']}", json={"address": "Jl. Baru"},
                                   headers=kader), 409)


async def test_a_household_whose_members_are_gone_closes_and_no_longer_counts(
        world: World, reporting: tuple[httpx.AsyncClient, str], household: httpx.AsyncClient,
        referral: httpx.AsyncClient, household_db: asyncpg.Connection, referral_db: asyncpg.Connection,
        stack: Stack) -> None:
    created = await _register(household, world, CLOSE, [_person("Sutrisno", 88)])
    widower = created["members"][0]
    kader = tokens.kader([world.posyandu[CLOSE]])
    await _counts_become(reporting, CLOSE, (1, 1))
    path = f"/api/v1/households/{created['id']}/close"

    # Not while a member is active.
    body = _problem(await household.post(path, json={"closed_on": TODAY.isoformat()}, headers=kader), 409)
    assert body["active_members"] == 1
    died = await household.post(f"/api/v1/households/{created['id']}/members/{widower['id']}/death",
                                json={"date_of_death": TODAY.isoformat(), "cause_category": "old-age"},
                                headers=kader)
    assert died.status_code == 200, died.text
    _problem(await household.post(path, json={"closed_on": (TODAY + timedelta(days=2)).isoformat()},
                                  headers=kader), 422, "body.closed_on")
    _problem(await household.post(path, json={"closed_on": TODAY.isoformat()},
                                  headers={**kader, "If-Match": '"2"'}), 412)

    closed = await household.post(path, json={"closed_on": TODAY.isoformat()}, headers={**kader, "If-Match": '"1"'})
    assert closed.status_code == 200, closed.text
    assert (closed.json()["status"], closed.json()["version"], closed.json()["members"]) == ("closed", 2, [])
    assert await household_db.fetchval(
        "SELECT count(*) FROM audit_log WHERE action = 'close-members-gone' AND subject_ref = $1", created["id"]) == 1
    [event] = await _household_event(stack, created["id"], "posyandu.household.closed.v1")
    assert (event.data["reason"], event.data["closed_on"], event.data["version"]) == (
        "members-gone", TODAY.isoformat(), 2)

    async def known_closed() -> bool:
        return bool(await referral_db.fetchval("SELECT status FROM known_households WHERE id = $1",
                                               uuid.UUID(created["id"])) == "closed")

    await eventually(known_closed, "the referral service to know the household closed")
    await _counts_become(reporting, CLOSE, (0, 0))
    _problem(await household.post(path, json={"closed_on": TODAY.isoformat()}, headers=kader), 409)
