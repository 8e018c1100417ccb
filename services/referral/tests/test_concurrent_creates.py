"""Uniqueness races on the referral's creates: two at once for the same need, or with the same Idempotency-Key,
end as one referral and one replay (or one 409), never a 500 or a second referral."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import asyncpg
import httpx

from services.referral.referrals import service
from services.referral.settings import ReferralSettings
from services.referral.tests import kerinci
from shared.db import create_engine, create_sessionmaker
from shared.events import household as hh
from shared.events.topics import SpmField
from tests.support import tokens


async def _home(referral_db: asyncpg.Connection) -> kerinci.Home:
    await kerinci.agency(referral_db, "Dinkes Kerinci", "1501", ["kesehatan"])
    return await kerinci.home(referral_db, kerinci.KERINCI)


async def _referrals_of(referral_db: asyncpg.Connection, home: kerinci.Home) -> int:
    return int(await referral_db.fetchval("SELECT count(*) FROM referrals WHERE household_id = $1",
                                          home.household_id))


async def test_two_creates_with_one_idempotency_key_make_one_referral_and_one_replay(
        referral: httpx.AsyncClient, referral_db: asyncpg.Connection) -> None:
    home = await _home(referral_db)
    headers = {**tokens.kader([home.posyandu_id]), "Idempotency-Key": f"race-{uuid.uuid4()}"}
    first, second = await asyncio.gather(*(referral.post("/api/v1/referrals", json=kerinci.referral_body(home),
                                                         headers=headers) for _ in range(2)))
    assert (first.status_code, second.status_code) == (201, 201), (first.text, second.text)
    assert first.json()["id"] == second.json()["id"]
    assert sorted(r.headers.get("idempotent-replayed", "") for r in (first, second)) == ["", "true"]
    assert await _referrals_of(referral_db, home) == 1


async def test_two_creates_with_one_key_and_different_bodies_make_one_referral_and_one_409(
        referral: httpx.AsyncClient, referral_db: asyncpg.Connection) -> None:
    home = await _home(referral_db)
    headers = {**tokens.kader([home.posyandu_id]), "Idempotency-Key": f"race-{uuid.uuid4()}"}
    responses = await asyncio.gather(*(referral.post("/api/v1/referrals", headers=headers,
                                                     json=kerinci.referral_body(home, reason=reason))
                                       for reason in ("Batuk lama", "Demam tinggi")))
    assert sorted(r.status_code for r in responses) == [201, 409], [r.text for r in responses]
    conflict = next(r for r in responses if r.status_code == 409)
    assert conflict.headers["content-type"] == "application/problem+json"
    assert "Idempotency-Key" in conflict.json()["detail"]
    assert await _referrals_of(referral_db, home) == 1


async def test_two_note_posts_with_one_key_add_one_note(referral: httpx.AsyncClient,
                                                        referral_db: asyncpg.Connection) -> None:
    home = await _home(referral_db)
    kader = tokens.kader([home.posyandu_id])
    made = await referral.post("/api/v1/referrals", json=kerinci.referral_body(home), headers=kader)
    assert made.status_code == 201, made.text
    url = f"/api/v1/referrals/{made.json()['id']}/notes"
    headers = {**kader, "Idempotency-Key": f"race-{uuid.uuid4()}"}
    responses = await asyncio.gather(*(referral.post(url, json={"text": "Sudah dikunjungi"}, headers=headers)
                                       for _ in range(2)))
    assert [r.status_code for r in responses] == [201, 201], [r.text for r in responses]
    assert responses[0].json()["id"] == responses[1].json()["id"]
    assert await referral_db.fetchval("SELECT count(*) FROM referral_notes WHERE referral_id = $1",
                                      uuid.UUID(made.json()["id"])) == 1


async def test_two_creates_for_one_need_make_one_referral_the_second_waiting_for_the_first(
        referral_settings: ReferralSettings, referral_db: asyncpg.Connection) -> None:
    home = await _home(referral_db)

    def detected() -> hh.NeedData:
        return hh.NeedData(need_id=uuid.uuid4(), household_id=home.household_id, member_id=home.member_id,
                           member_nik_masked="150101******0001", posyandu_id=home.posyandu_id,
                           village_code=home.village_code, spm_field=SpmField.KESEHATAN,
                           category="kesehatan.tb-suspect", urgency="high", evidence={"cough_weeks": 3})

    need, other = detected(), detected()
    # Two real transactions (no rolled-back session): the race between them is what is tested.
    engine = create_engine(referral_settings)
    maker = create_sessionmaker(engine)

    async def create(need: hh.NeedData) -> bool:
        async with maker() as session, session.begin():
            made = await service.create_from_need(session=session, need=need, draft_categories=frozenset(),
                                                  now=datetime.now(UTC))
            return made is not None

    try:
        async with maker() as first, first.begin():
            assert await service.create_from_need(session=first, need=need, draft_categories=frozenset(),
                                                  now=datetime.now(UTC)) is not None
            second = asyncio.create_task(create(need))
            await asyncio.sleep(0.5)
            # The unique index holds the second insert until the first transaction ends: it cannot be done yet.
            assert not second.done()
        assert await second is False  # the need had its referral by then: nothing written, no error
        assert sorted(await asyncio.gather(create(other), create(other))) == [False, True]
    finally:
        await engine.dispose()
    for one in (need, other):
        assert await referral_db.fetchval("SELECT count(*) FROM referrals WHERE need_id = $1", one.need_id) == 1
