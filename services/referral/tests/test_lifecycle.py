"""The lifecycle: every legal and illegal transition, reassignment, concurrency, history and notes."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest

from services.referral.tests.factories import (
    TEBET_TIMUR,
    create_referral,
    known_agency,
    known_household,
    known_posyandu,
    outbox_types,
)
from tests.support import tokens
from tests.support.waiting import eventually

FIELD, CATEGORY = "kesehatan", "kesehatan.tb-suspect"
STATES = ["draft", "requested", "received", "accepted", "in-progress", "completed", "rejected", "failed",
          "cancelled"]
#: How to reach each state from a fresh draft.
PATHS = {"draft": [], "requested": ["submit"], "received": ["submit", "receive"], "accepted": ["submit", "accept"],
         "in-progress": ["submit", "accept", "start"], "completed": ["submit", "accept", "start", "complete"],
         "rejected": ["submit", "reject"], "failed": ["submit", "accept", "fail"], "cancelled": ["submit", "cancel"]}
#: (from, action) -> to: the whole table of legal moves; everything else is a 409.
LEGAL = {
    ("draft", "submit"): "requested", ("draft", "cancel"): "cancelled",
    ("requested", "receive"): "received", ("requested", "accept"): "accepted",
    ("requested", "reject"): "rejected", ("requested", "cancel"): "cancelled", ("requested", "reassign"): "requested",
    ("received", "accept"): "accepted", ("received", "reject"): "rejected", ("received", "cancel"): "cancelled",
    ("received", "reassign"): "requested",
    ("accepted", "start"): "in-progress", ("accepted", "fail"): "failed", ("accepted", "cancel"): "cancelled",
    ("accepted", "reassign"): "requested",
    ("in-progress", "complete"): "completed", ("in-progress", "fail"): "failed", ("in-progress", "cancel"): "cancelled",
}
POSYANDU_ACTIONS = {"submit", "cancel"}
ACTIONS = ["submit", "receive", "accept", "reject", "start", "complete", "fail", "cancel", "reassign"]


@dataclass
class Setting:
    client: httpx.AsyncClient
    household: dict[str, Any]
    agency: str
    other_agency: str

    @property
    def kader(self) -> dict[str, str]:
        return tokens.kader([self.household["posyandu_id"]])

    @property
    def opd(self) -> dict[str, str]:
        return tokens.opd(self.agency, [FIELD])

    def body(self, action: str) -> dict[str, Any]:
        return {"reject": {"reason": "Bukan wewenang kami"}, "fail": {"reason": "Keluarga pindah"},
                "cancel": {"reason": "Salah input"}, "complete": {"outcome": "Diperiksa di puskesmas, negatif"},
                "reassign": {"agency_id": self.other_agency, "reason": "Wilayah puskesmas lain"}}.get(action, {})

    async def act(self, referral_id: str, action: str, **kwargs: Any) -> httpx.Response:
        headers = {**(self.kader if action in POSYANDU_ACTIONS else self.opd), **kwargs.pop("headers", {})}
        return await self.client.post(f"/api/v1/referrals/{referral_id}/{action}",
                                      json=kwargs.pop("json", self.body(action)), headers=headers)

    async def referral_in(self, state: str) -> dict[str, Any]:
        created = await create_referral(self.client, self.household, spm_field=FIELD, category=CATEGORY, draft=True)
        for action in PATHS[state]:
            response = await self.act(created["id"], action)
            assert response.status_code == 200, response.text
            created = response.json()
        assert created["status"] == state
        return created


@pytest.fixture(scope="module")
async def setting(registry: httpx.AsyncClient, household: httpx.AsyncClient, referral: httpx.AsyncClient,
                  household_settings: Any, referral_settings: Any) -> Setting:
    household_db = await asyncpg.connect(household_settings.database_url)
    referral_db = await asyncpg.connect(referral_settings.database_url)
    try:
        await known_agency(registry, referral_db, "3174", [FIELD])
        # Registered later, so never the responsible one: the target of reassignments.
        other = await known_agency(registry, referral_db, "3174", [FIELD])
        place = await known_posyandu(registry, household_db, TEBET_TIMUR)
        created = await known_household(household, referral_db, place, TEBET_TIMUR)
    finally:
        await household_db.close()
        await referral_db.close()
    # The earliest registered agency of the field in the regency (another test's, if it ran first).
    probe = await create_referral(referral, created, spm_field=FIELD, category=CATEGORY)
    assert probe["agency_id"] not in (None, other)
    return Setting(referral, created, probe["agency_id"], other)


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("action", ACTIONS)
async def test_each_action_is_legal_exactly_from_its_states(setting: Setting, state: str, action: str) -> None:
    created = await setting.referral_in(state)
    response = await setting.act(created["id"], action)
    if state == "draft" and action not in POSYANDU_ACTIONS:
        assert response.status_code == 404, response.text  # a draft is not routed: no agency sees it yet
    elif (state, action) in LEGAL:
        assert response.status_code == 200, response.text
        assert response.json()["status"] == LEGAL[(state, action)]
    else:
        assert response.status_code == 409, response.text
        problem = response.json()
        assert response.headers["content-type"] == "application/problem+json"
        assert problem["current_status"] == state and state in problem["detail"]


async def test_the_history_says_who_when_why(setting: Setting) -> None:
    created = await setting.referral_in("completed")
    assert created["agency_id"] == setting.agency and created["outcome"] == "Diperiksa di puskesmas, negatif"
    history = (await setting.client.get(f"/api/v1/referrals/{created['id']}/history", headers=setting.kader)).json()
    assert [(h["action"], h["from_status"], h["to_status"]) for h in history] == [
        ("create", None, "draft"), ("submit", "draft", "requested"), ("accept", "requested", "accepted"),
        ("start", "accepted", "in-progress"), ("complete", "in-progress", "completed")]
    assert [h["actor_role"] for h in history] == ["kader", "kader", "opd", "opd", "opd"]
    assert history[-1]["outcome"] == "Diperiksa di puskesmas, negatif" and all(h["at"] for h in history)


async def test_each_transition_is_an_event(setting: Setting, referral_db: asyncpg.Connection) -> None:
    created = await setting.referral_in("in-progress")
    assert await outbox_types(referral_db, created["id"]) == [
        "posyandu.referral.created.v1"] + ["posyandu.referral.status-changed.v1"] * 3


async def test_reassign_hands_the_referral_to_another_agency_of_the_field(setting: Setting,
                                                                        referral_db: asyncpg.Connection) -> None:
    created = await setting.referral_in("accepted")
    response = await setting.act(created["id"], "reassign")
    assert response.status_code == 200, response.text
    moved = response.json()
    assert moved["agency_id"] == setting.other_agency and moved["status"] == "requested"
    assert moved["responded_at"] is None  # the new agency's clocks start afresh
    url = f"/api/v1/referrals/{created['id']}"
    assert (await setting.client.get(url, headers=setting.opd)).status_code == 404
    assert (await setting.client.get(url, headers=tokens.opd(setting.other_agency, [FIELD]))).status_code == 200
    assert (await outbox_types(referral_db, created["id"]))[-1] == "posyandu.referral.reassigned.v1"
    payload = await referral_db.fetchval("SELECT payload FROM outbox WHERE key = $1 ORDER BY id DESC LIMIT 1",
                                         created["id"])
    assert setting.agency.encode() in payload  # previous_agency_id


async def test_reassign_needs_an_agency_of_the_same_field(setting: Setting, registry: httpx.AsyncClient,
                                                          referral_db: asyncpg.Connection) -> None:
    created = await setting.referral_in("requested")
    other_field = await known_agency(registry, referral_db, "3174", ["sosial"])
    for target in (other_field, str(uuid.uuid4())):
        response = await setting.act(created["id"], "reassign", json={"agency_id": target, "reason": "x"})
        assert response.status_code == 422, response.text
    assert (await setting.act(created["id"], "reassign", json={"reason": "x"})).status_code == 422


async def test_reassign_only_to_an_active_agency_of_the_field_whose_jurisdiction_holds_the_village(
        setting: Setting, registry: httpx.AsyncClient, household: httpx.AsyncClient,
        referral_db: asyncpg.Connection, household_db: asyncpg.Connection) -> None:
    created = await setting.referral_in("accepted")
    url = f"/api/v1/referrals/{created['id']}"
    elsewhere = await known_agency(registry, referral_db, "7602", [FIELD])  # Mamuju, another province
    next_door = await known_agency(registry, referral_db, "3175", [FIELD])  # Jakarta Timur, another regency
    retired = await known_agency(registry, referral_db, "3174", [FIELD])
    assert (await registry.post(f"/api/v1/agencies/{retired}/deactivate", headers=tokens.admin())).status_code == 200

    async def retired_known() -> bool:
        return await referral_db.fetchval("SELECT status FROM known_agencies WHERE id = $1",
                                          uuid.UUID(retired)) == "inactive"

    await eventually(retired_known, "the referral service to learn the deactivation")
    other_field = await known_agency(registry, referral_db, "3174", ["sosial"])
    before = ((await setting.client.get(url, headers=tokens.admin())).json(),
              (await setting.client.get(f"{url}/history", headers=tokens.admin())).json(),
              await outbox_types(referral_db, created["id"]))
    for target, why in ((elsewhere, "jurisdiction"), (next_door, "jurisdiction"), (retired, "not active"),
                        (other_field, f"does not serve {FIELD}"), (str(uuid.uuid4()), "no agency")):
        response = await setting.act(created["id"], "reassign", json={"agency_id": target, "reason": "Pindah"})
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert problem["errors"][0]["field"] == "agency_id" and why in problem["detail"], problem
    after = ((await setting.client.get(url, headers=tokens.admin())).json(),
             (await setting.client.get(f"{url}/history", headers=tokens.admin())).json(),
             await outbox_types(referral_db, created["id"]))
    assert after == before  # nothing changed, no event
    outsider = tokens.opd(elsewhere, [FIELD])
    assert (await setting.client.get(url, headers=outsider)).status_code == 404

    # An agency of the village's regency takes it; once the household service has applied that later event of the
    # referral, the agency of another province still reads neither the household nor its NIKs.
    moved = await setting.act(created["id"], "reassign")
    assert moved.status_code == 200 and moved.json()["agency_id"] == setting.other_agency, moved.text

    async def household_knows_the_new_agency() -> bool:
        return await household_db.fetchval("SELECT agency_id FROM agency_access WHERE referral_id = $1",
                                           uuid.UUID(created["id"])) == uuid.UUID(setting.other_agency)

    await eventually(household_knows_the_new_agency, "the household service to learn the reassignment")
    household_url = f"/api/v1/households/{setting.household['id']}"
    assert (await household.get(household_url, headers=outsider)).status_code == 404
    taker = await household.get(household_url, headers=tokens.opd(setting.other_agency, [FIELD]))
    assert taker.status_code == 200 and taker.json()["members"][0]["nik"] == setting.household["members"][0]["nik"]


async def test_actions_need_their_reason_or_outcome(setting: Setting) -> None:
    created = await setting.referral_in("requested")
    response = await setting.act(created["id"], "reject", json={})
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "reason"
    assert (await setting.act(created["id"], "reject", json={"reason": "x", "extra": 1})).status_code == 422


async def test_each_side_moves_only_its_own_transitions(setting: Setting) -> None:
    created = await setting.referral_in("requested")
    assert (await setting.act(created["id"], "accept", headers=setting.kader)).status_code == 403
    assert (await setting.act(created["id"], "cancel", headers=setting.opd)).status_code == 403
    pembina = tokens.pembina("3174")
    assert (await setting.act(created["id"], "accept", headers=pembina)).status_code == 403


async def test_actions_honour_if_match(setting: Setting) -> None:
    created = await setting.referral_in("requested")
    url = f"/api/v1/referrals/{created['id']}"
    read = await setting.client.get(url, headers=setting.kader)
    assert read.headers["etag"] == f'"{created["version"]}"'
    stale = await setting.act(created["id"], "receive", headers={"If-Match": '"999"'})
    assert stale.status_code == 412 and stale.json()["current_etag"] == read.headers["etag"]
    fresh = await setting.act(created["id"], "receive", headers={"If-Match": read.headers["etag"]})
    assert fresh.status_code == 200 and fresh.headers["etag"] == f'"{created["version"] + 1}"'


async def test_two_concurrent_transitions_do_not_both_succeed(setting: Setting) -> None:
    created = await setting.referral_in("requested")
    responses = await asyncio.gather(setting.act(created["id"], "accept"), setting.act(created["id"], "reject"))
    assert sorted(r.status_code for r in responses) == [200, 409]


async def test_notes_go_both_ways_and_each_is_an_event(setting: Setting, referral_db: asyncpg.Connection) -> None:
    created = await setting.referral_in("accepted")
    url = f"/api/v1/referrals/{created['id']}/notes"
    assert (await setting.client.post(url, json={"text": "Mohon kunjungan minggu ini"},
                                      headers=setting.kader)).status_code == 201
    assert (await setting.client.post(url, json={"text": "Dijadwalkan Kamis"},
                                      headers=setting.opd)).status_code == 201
    assert (await setting.client.post(url, json={"text": "x"},
                                      headers=tokens.pembina("31"))).status_code == 403
    notes = (await setting.client.get(url, headers=setting.opd)).json()
    assert [(n["author_side"], n["text"]) for n in notes] == [
        ("posyandu", "Mohon kunjungan minggu ini"), ("agency", "Dijadwalkan Kamis")]
    types = await outbox_types(referral_db, created["id"])
    assert types.count("posyandu.referral.note-added.v1") == 2


async def test_a_kader_creates_only_for_their_posyandu_and_a_category_of_the_field(setting: Setting) -> None:
    body = {"household_id": setting.household["id"], "spm_field": FIELD, "category": CATEGORY, "reason": "x"}
    other_kader = tokens.kader([uuid.uuid4()])
    assert (await setting.client.post("/api/v1/referrals", json=body, headers=other_kader)).status_code == 422
    wrong = {**body, "category": "sosial.homeless"}
    assert (await setting.client.post("/api/v1/referrals", json=wrong, headers=setting.kader)).status_code == 422
    assert (await setting.client.post("/api/v1/referrals", json=body, headers=setting.opd)).status_code == 403
    assert (await setting.client.post("/api/v1/referrals", json={**body, "status": "completed"},
                                      headers=setting.kader)).status_code == 422


async def test_creates_are_idempotent(setting: Setting) -> None:
    body = {"household_id": setting.household["id"], "spm_field": FIELD, "category": CATEGORY, "reason": "Batuk"}
    headers = {**setting.kader, "Idempotency-Key": uuid.uuid4().hex}
    first = await setting.client.post("/api/v1/referrals", json=body, headers=headers)
    again = await setting.client.post("/api/v1/referrals", json=body, headers=headers)
    assert first.status_code == again.status_code == 201 and first.json()["id"] == again.json()["id"]
    assert again.headers["idempotent-replayed"] == "true"
    other = await setting.client.post("/api/v1/referrals", json={**body, "reason": "lain"}, headers=headers)
    assert other.status_code == 409
