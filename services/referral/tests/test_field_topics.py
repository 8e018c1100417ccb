"""The field topic an agency integration reads carries no personal data after the whole referral loop.

A household with a member's need becomes a referral that is accepted, worked on, noted both ways and completed
with an outcome; a second, hand-made referral of the member is cancelled with a reason. Then the real topic is read
from the beginning: no record holds the member's NIK (full or masked), name, or any of the free texts, no record's
data has an attribute the catalogue classifies as personal data, and the household service's agency access (which
consumes the topic) still opens and closes with the referral.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter

import asyncpg
import httpx

from conftest import Stack
from services.referral.tests.factories import (
    TEBET_TIMUR,
    create_referral,
    known_agency,
    known_household,
    known_posyandu,
)
from shared.events.catalogue import load_all
from shared.events.personal_data import classification
from tests.support import tokens
from tests.support.kafka import Received, read_topic
from tests.support.waiting import eventually

FIELD = "kesehatan"
TOPIC = f"posyandu.referral.{FIELD}.v1"


async def test_after_the_referral_loop_the_field_topic_holds_no_nik_name_or_free_text(
        registry: httpx.AsyncClient, household: httpx.AsyncClient, referral: httpx.AsyncClient,
        household_db: asyncpg.Connection, referral_db: asyncpg.Connection, stack: Stack) -> None:
    await known_agency(registry, referral_db, "3174", [FIELD])
    place = await known_posyandu(registry, household_db, TEBET_TIMUR)
    created = await known_household(household, referral_db, place, TEBET_TIMUR)
    kader = tokens.kader([place])
    head = created["members"][0]
    tag = uuid.uuid4().hex[:8]
    texts = {"reason": f"Batuk berdarah {tag}", "cancel": f"Salah input {tag}", "kader note": f"Rumah biru {tag}",
             "agency note": f"Jadwal puskesmas {tag}", "outcome": f"Dahak negatif {tag}"}

    # A need about the head of the household becomes a referral of that member.
    profile = await household.put(f"/api/v1/households/{created['id']}/profiles/{FIELD}",
                                  json={"members": {head["id"]: {"long_cough": True}}}, headers=kader)
    assert profile.status_code == 201, profile.text

    async def from_the_need() -> asyncpg.Record | None:
        return await referral_db.fetchrow("SELECT id, agency_id, member_id FROM referrals WHERE household_id = $1 "
                                          "AND origin = 'need'", uuid.UUID(created["id"]))

    row = await eventually(from_the_need, "the referral of the detected need")
    need_id, agency_id = str(row["id"]), str(row["agency_id"])
    assert str(row["member_id"]) == head["id"]
    opd = tokens.opd(agency_id, [FIELD])
    base = f"/api/v1/referrals/{need_id}"
    for action, body in (("accept", None), ("start", None)):
        assert (await referral.post(f"{base}/{action}", json=body, headers=opd)).status_code == 200

    async def access_open() -> bool:
        return bool(await household_db.fetchval("SELECT open FROM agency_access WHERE referral_id = $1",
                                                uuid.UUID(need_id)))

    await eventually(access_open, "the household service to open the agency's access")
    # What the scan looks for is real: the assigned agency reads the member's NIK and name through the REST API.
    read = (await referral.get(base, headers=opd)).json()
    assert read["member_details"] == {"member_id": head["id"], "nik": head["nik"], "name": head["name"]}
    for author, text in ((kader, texts["kader note"]), (opd, texts["agency note"])):
        assert (await referral.post(f"{base}/notes", json={"text": text}, headers=author)).status_code == 201
    done = await referral.post(f"{base}/complete", json={"outcome": texts["outcome"]}, headers=opd)
    assert done.status_code == 200, done.text

    by_hand = await create_referral(referral, created, spm_field=FIELD, category="kesehatan.hypertension",
                                    reason=texts["reason"])
    cancelled = await referral.post(f"/api/v1/referrals/{by_hand['id']}/cancel", json={"reason": texts["cancel"]},
                                    headers=kader)
    assert cancelled.status_code == 200, cancelled.text
    # And the REST API shows the masked NIK to the posyandu side.
    masked = head["nik"][:6] + "******" + head["nik"][-4:]
    assert by_hand["member_nik_masked"] == masked

    ours = {need_id, by_hand["id"]}
    # created twice; accept, start, complete and cancel; two notes.
    expected = {"posyandu.referral.created.v1": 2, "posyandu.referral.status-changed.v1": 4,
                "posyandu.referral.note-added.v1": 2}

    def types_about_ours(received: list[Received]) -> Counter[str]:
        return Counter(r.event.type for r in received if r.event is not None and r.event.subject in ours)

    received = await read_topic(stack.broker.bootstrap_servers, TOPIC, timeout=60,
                                until=lambda rs: types_about_ours(rs) >= Counter(expected))
    records = [r.record for r in received]

    # Not in any record of the topic, whoever's referral it is about.
    needles = [head["nik"], masked, head["nik"][6:], head["name"], *texts.values()]
    leaks = {needle: [r.offset for r in records if needle.encode() in r.value] for needle in needles}
    assert {needle: offsets for needle, offsets in leaks.items() if offsets} == {}
    catalogue = load_all()
    for record in records:
        event = json.loads(record.value)
        marks = classification(catalogue[event["type"]].data_model)
        assert set(event["data"]) <= set(marks), event["type"]
        assert not [name for name in event["data"] if marks[name]], event["type"]

    # The household service's agency access reads the topic without the removed attribute: closed with the referral.
    async def access_closed() -> bool:
        return await household_db.fetchval("SELECT open FROM agency_access WHERE referral_id = $1",
                                           uuid.UUID(need_id)) is False

    await eventually(access_closed, "the household service to close the agency's access")
