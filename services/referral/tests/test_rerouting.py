"""Re-routing: an agency that is deactivated or loses a field or a region gives up its open referrals (to the agency
that owns the route now, or unrouted for the pembina); a household that moves takes its open referrals along,
their agency following the new route (REFERRAL_MOVE_POLICY=follow) or staying (stay).

Kota Jakarta Utara (3172) and Kabupaten Kepulauan Seribu (3101) in DKI Jakarta (31) with the fields
perumahan-rakyat, pekerjaan-umum and trantibumlinmas are this module's own: each test uses its own field there.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer

from services.referral.settings import MovePolicy, ReferralSettings
from services.referral.tests.factories import (
    create_referral,
    known_agency,
    known_household,
    known_posyandu,
    outbox_types,
)
from shared.events import registry as reg
from shared.events.topics import SpmField
from tests.support import tokens
from tests.support.waiting import eventually

PENJARINGAN = "3172011001"  # Kota Administrasi Jakarta Utara
PULAU_PANGGANG = "3101011001"  # Kabupaten Administrasi Kepulauan Seribu


async def act(referral: httpx.AsyncClient, made: dict[str, Any], agency: str, field: str, *actions: str,
              **body: Any) -> dict[str, Any]:
    state = made
    for action in actions:
        response = await referral.post(f"/api/v1/referrals/{made['id']}/{action}", json=body or None,
                                       headers=tokens.opd(agency, [field]))
        assert response.status_code == 200, response.text
        state = response.json()
    return state


async def read(referral: httpx.AsyncClient, referral_id: str) -> dict[str, Any]:
    body: dict[str, Any] = (await referral.get(f"/api/v1/referrals/{referral_id}", headers=tokens.admin())).json()
    return body


async def history(referral: httpx.AsyncClient, referral_id: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = (await referral.get(f"/api/v1/referrals/{referral_id}/history",
                                                     headers=tokens.admin())).json()
    return rows


async def until(referral: httpx.AsyncClient, referral_id: str, what: str, **expected: Any) -> dict[str, Any]:
    async def arrived() -> dict[str, Any] | None:
        body = await read(referral, referral_id)
        return body if all(body[k] == v for k, v in expected.items()) else None

    return await eventually(arrived, what)


async def last_event(referral_db: asyncpg.Connection, referral_id: str) -> dict[str, Any]:
    payload = await referral_db.fetchval("SELECT payload FROM outbox WHERE key = $1 ORDER BY id DESC LIMIT 1",
                                         referral_id)
    event: dict[str, Any] = json.loads(payload)
    return event


async def agency_version(registry: httpx.AsyncClient, agency_id: str) -> str:
    return (await registry.get(f"/api/v1/agencies/{agency_id}", headers=tokens.admin())).headers["ETag"]


async def test_a_deactivated_agency_hands_its_open_referrals_to_the_new_owner_then_they_wait_unrouted(
        registry: httpx.AsyncClient, household: httpx.AsyncClient, referral: httpx.AsyncClient,
        household_db: asyncpg.Connection, referral_db: asyncpg.Connection) -> None:
    field, category = "perumahan-rakyat", "perumahan-rakyat.rtlh"
    first = await known_agency(registry, referral_db, "3172", [field])
    place = await known_posyandu(registry, household_db, PENJARINGAN)
    created = await known_household(household, referral_db, place, PENJARINGAN)
    requested, accepted, started, done = [await create_referral(referral, created, spm_field=field, category=category)
                                          for _ in range(4)]
    assert {r["agency_id"] for r in (requested, accepted, started, done)} == {first}
    await act(referral, accepted, first, field, "accept")
    await act(referral, started, first, field, "accept", "start")
    await act(referral, done, first, field, "accept", "start")
    await act(referral, done, first, field, "complete", outcome="Rumah diperbaiki")
    second = await known_agency(registry, referral_db, "3172", [field])

    deactivated = await registry.post(f"/api/v1/agencies/{first}/deactivate", headers=tokens.admin())
    assert deactivated.status_code == 200, deactivated.text
    for made in (requested, accepted, started):
        after = await until(referral, made["id"], "the referral to move to the new owner", agency_id=second)
        assert after["status"] == "requested" and after["respond_by"] and after["responded_at"] is None
        last = (await history(referral, made["id"]))[-1]
        assert (last["action"], last["actor"], last["from_agency_id"], last["to_agency_id"], last["reason"]) == (
            "reroute", "system", first, second, "agency deactivated")
        event = await last_event(referral_db, made["id"])
        assert event["type"] == "posyandu.referral.reassigned.v1"
        assert (event["data"]["agency_id"], event["data"]["previous_agency_id"]) == (second, first)
    # A closed referral stays where it was closed.
    assert (await read(referral, done["id"]))["agency_id"] == first
    assert (await history(referral, done["id"]))[-1]["action"] == "complete"
    # The new owner acts on what it received; the old one sees it no more.
    await act(referral, accepted, second, field, "accept")
    assert (await referral.get(f"/api/v1/referrals/{accepted['id']}",
                               headers=tokens.opd(first, [field]))).status_code == 404

    # No agency owns the route any more (no province agency of the field in 31): unrouted, for the pembina.
    assert (await registry.post(f"/api/v1/agencies/{second}/deactivate", headers=tokens.admin())).status_code == 200
    for made in (requested, accepted, started):
        after = await until(referral, made["id"], "the referral to wait unrouted", agency_id=None)
        assert after["unrouted"] and after["status"] == "requested" and after["respond_by"] is None
        last = (await history(referral, made["id"]))[-1]
        assert (last["action"], last["from_agency_id"], last["to_agency_id"], last["reason"]) == (
            "reroute", second, None, "agency deactivated")
        event = await last_event(referral_db, made["id"])
        assert event["type"] == "posyandu.referral.unrouted.v1"
        assert (event["data"]["agency_id"], event["data"]["previous_agency_id"]) == (None, second)
    unrouted = (await referral.get("/api/v1/referrals?unrouted=true&region=3172",
                                   headers=tokens.pembina("3172"))).json()["items"]
    assert {requested["id"], accepted["id"], started["id"]} <= {r["id"] for r in unrouted}
    # Redelivery-proof: each referral moved exactly twice.
    for made in (requested, accepted, started):
        assert [h["action"] for h in await history(referral, made["id"])].count("reroute") == 2

    # An agency for the route appears: the waiting referrals are routed to it (as any unrouted one is).
    third = await known_agency(registry, referral_db, "3172", [field])
    await until(referral, requested["id"], "the waiting referral to be routed", agency_id=third)


async def test_an_agency_losing_a_field_gives_those_referrals_to_the_province_agency(
        registry: httpx.AsyncClient, household: httpx.AsyncClient, referral: httpx.AsyncClient,
        household_db: asyncpg.Connection, referral_db: asyncpg.Connection) -> None:
    field, kept_field = "pekerjaan-umum", "sosial"
    regency = await known_agency(registry, referral_db, "3101", [field, kept_field])
    province = await known_agency(registry, referral_db, "31", [field])
    place = await known_posyandu(registry, household_db, PULAU_PANGGANG)
    created = await known_household(household, referral_db, place, PULAU_PANGGANG)
    water = await create_referral(referral, created, spm_field=field, category="pekerjaan-umum.drinking-water")
    care = await create_referral(referral, created, spm_field=kept_field, category="sosial.neglected-child")
    assert water["agency_id"] == care["agency_id"] == regency

    updated = await registry.patch(f"/api/v1/agencies/{regency}", json={"spm_fields": [kept_field]},
                                   headers={**tokens.admin(), "If-Match": await agency_version(registry, regency)})
    assert updated.status_code == 200, updated.text
    after = await until(referral, water["id"], "the referral to go to the province agency", agency_id=province)
    assert after["status"] == "requested"
    last = (await history(referral, water["id"]))[-1]
    assert (last["action"], last["from_agency_id"], last["to_agency_id"], last["reason"]) == (
        "reroute", regency, province, "agency no longer serves pekerjaan-umum")
    assert await outbox_types(referral_db, water["id"]) == ["posyandu.referral.created.v1",
                                                           "posyandu.referral.reassigned.v1"]
    # The field it kept keeps its referral.
    assert (await read(referral, care["id"]))["agency_id"] == regency
    assert await outbox_types(referral_db, care["id"]) == ["posyandu.referral.created.v1"]


async def test_an_agency_losing_its_region_gives_up_its_referrals_and_an_older_event_changes_nothing(
        registry: httpx.AsyncClient, household: httpx.AsyncClient, referral: httpx.AsyncClient,
        household_db: asyncpg.Connection, referral_db: asyncpg.Connection, stack: Any) -> None:
    """The registry keeps a jurisdiction fixed, but the referral service follows whatever its events say: an
    agency event announcing another jurisdiction (sent here on the real topic) re-routes as losing a field does."""
    field, category = "perumahan-rakyat", "perumahan-rakyat.disaster-damage"
    moving = await known_agency(registry, referral_db, "3101", [field])
    place = await known_posyandu(registry, household_db, PULAU_PANGGANG)
    created = await known_household(household, referral_db, place, PULAU_PANGGANG)
    made = await create_referral(referral, created, spm_field=field, category=category)
    assert made["agency_id"] == moving
    row = await referral_db.fetchrow("SELECT * FROM known_agencies WHERE id = $1", uuid.UUID(moving))

    def agency_event(jurisdiction: str, version: int) -> bytes:
        data = reg.AgencyData(agency_id=row["id"], name=row["name"], level=reg.AgencyLevel.REGENCY,
                              jurisdiction_code=jurisdiction, spm_fields=[SpmField(field)],
                              status=reg.Status.ACTIVE, version=version)
        return reg.AGENCY_UPDATED.new(data, subject=moving).to_bytes()

    producer = AIOKafkaProducer(bootstrap_servers=stack.broker.bootstrap_servers)
    await producer.start()
    try:
        await producer.send_and_wait("posyandu.registry.v1", agency_event("3172", row["version"] + 2),
                                     key=moving.encode())
        after = await until(referral, made["id"], "the referral to leave the agency", agency_id=None)
        last = (await history(referral, made["id"]))[-1]
        assert (last["action"], last["reason"]) == (
            "reroute", "agency's jurisdiction 3172 no longer holds village 3101011001")
        # A late, older version (still 3101) is not applied: nothing moves back or again.
        await producer.send_and_wait("posyandu.registry.v1", agency_event("3101", row["version"] + 1),
                                     key=moving.encode())
        marker = await known_agency(registry, referral_db, "3173", ["pendidikan"])  # consumed after the old one
        assert marker
        assert (await read(referral, made["id"]))["version"] == after["version"]
        assert await referral_db.fetchval("SELECT jurisdiction_code FROM known_agencies WHERE id = $1",
                                          uuid.UUID(moving)) == "3172"
    finally:
        await producer.stop()


@pytest.fixture
def stay_policy(referral_settings: ReferralSettings) -> Iterator[None]:
    referral_settings.referral_move_policy = MovePolicy.STAY
    try:
        yield
    finally:
        referral_settings.referral_move_policy = MovePolicy.FOLLOW


async def _moved_household(registry: httpx.AsyncClient, household: httpx.AsyncClient, referral: httpx.AsyncClient,
                           household_db: asyncpg.Connection, referral_db: asyncpg.Connection,
                           field: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], str, str]:
    """A household in 3172 with an open and a draft referral; then moved to a posyandu in 3101."""
    old_place = await known_posyandu(registry, household_db, PENJARINGAN)
    new_place = await known_posyandu(registry, household_db, PULAU_PANGGANG)
    created = await known_household(household, referral_db, old_place, PENJARINGAN)
    open_one = await create_referral(referral, created, spm_field=field,
                                     category="trantibumlinmas.public-order")
    draft = await create_referral(referral, created, spm_field=field,
                                  category="trantibumlinmas.public-order", draft=True)
    moved = await household.post(f"/api/v1/households/{created['id']}/move",
                                 json={"posyandu_id": new_place, "village_code": PULAU_PANGGANG},
                                 headers=tokens.kader([old_place]))
    assert moved.status_code == 200, moved.text
    return created, open_one, draft, old_place, new_place


async def test_a_moving_household_takes_its_referrals_to_the_new_posyandu_and_agency_under_follow(
        registry: httpx.AsyncClient, household: httpx.AsyncClient, referral: httpx.AsyncClient,
        household_db: asyncpg.Connection, referral_db: asyncpg.Connection) -> None:
    field = "trantibumlinmas"
    here = await known_agency(registry, referral_db, "3172", [field])
    there = await known_agency(registry, referral_db, "3101", [field])
    _, open_one, draft, old_place, new_place = await _moved_household(
        registry, household, referral, household_db, referral_db, field)
    assert open_one["agency_id"] == here

    after = await until(referral, open_one["id"], "the referral to follow the household", posyandu_id=new_place)
    assert (after["village_code"], after["agency_id"], after["status"]) == (PULAU_PANGGANG, there, "requested")
    last = (await history(referral, open_one["id"]))[-1]
    assert (last["action"], last["from_agency_id"], last["to_agency_id"], last["reason"]) == (
        "household-move", here, there, f"household moved to posyandu {new_place}, village {PULAU_PANGGANG}")
    assert (await outbox_types(referral_db, open_one["id"]))[-1] == "posyandu.referral.reassigned.v1"
    # The draft (no agency yet) follows the posyandu; submitted there, it routes to the new place's agency.
    moved_draft = await until(referral, draft["id"], "the draft to follow", posyandu_id=new_place)
    assert moved_draft["status"] == "draft" and moved_draft["agency_id"] is None
    submitted = await referral.post(f"/api/v1/referrals/{draft['id']}/submit", headers=tokens.kader([new_place]))
    assert submitted.status_code == 200 and submitted.json()["agency_id"] == there
    # The new posyandu's kader sees the referral, the old one's does not; the old agency no longer does.
    assert (await referral.get(f"/api/v1/referrals/{open_one['id']}",
                               headers=tokens.kader([new_place]))).status_code == 200
    for headers in (tokens.kader([old_place]), tokens.opd(here, [field])):
        assert (await referral.get(f"/api/v1/referrals/{open_one['id']}", headers=headers)).status_code == 404


async def test_a_moving_household_keeps_its_referrals_agency_under_stay_with_a_history_note(
        registry: httpx.AsyncClient, household: httpx.AsyncClient, referral: httpx.AsyncClient,
        household_db: asyncpg.Connection, referral_db: asyncpg.Connection, stay_policy: None) -> None:
    field = "trantibumlinmas"
    await known_agency(registry, referral_db, "3172", [field])
    await known_agency(registry, referral_db, "3101", [field])
    _, open_one, draft, old_place, new_place = await _moved_household(
        registry, household, referral, household_db, referral_db, field)
    kept = open_one["agency_id"]
    assert kept is not None

    after = await until(referral, open_one["id"], "the referral to follow the household", posyandu_id=new_place)
    assert (after["village_code"], after["agency_id"], after["status"]) == (PULAU_PANGGANG, kept, "requested")
    last = (await history(referral, open_one["id"]))[-1]
    assert (last["action"], last["from_agency_id"], last["to_agency_id"]) == ("household-move", kept, kept)
    assert last["reason"] == (f"household moved to posyandu {new_place}, village {PULAU_PANGGANG}; the referral "
                              "stays with its agency (REFERRAL_MOVE_POLICY=stay)")
    assert (await outbox_types(referral_db, open_one["id"]))[-1] == "posyandu.referral.status-changed.v1"
    assert (await referral.get(f"/api/v1/referrals/{open_one['id']}",
                               headers=tokens.opd(kept, [field]))).status_code == 200
    # The posyandu side follows under either policy: the draft too, and the old posyandu's kader sees neither.
    assert (await until(referral, draft["id"], "the draft to follow", posyandu_id=new_place))["status"] == "draft"
    for made in (open_one, draft):
        assert (await referral.get(f"/api/v1/referrals/{made['id']}",
                                   headers=tokens.kader([old_place]))).status_code == 404
