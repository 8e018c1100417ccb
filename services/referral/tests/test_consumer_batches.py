"""The referral service learns a fetch's members, and its registered households, in one statement each (not one
per event), the newest version winning; a republished registration still takes the household's open referrals
to its current place."""

from __future__ import annotations

import uuid

import asyncpg

from services.referral.consumers.household import HouseholdEvents
from services.referral.settings import ReferralSettings
from services.referral.tests.factories import statements_of
from shared.consumer import apply_once
from shared.db import create_engine, create_sessionmaker
from shared.events import household as hh
from shared.events.topics import SpmField

#: Regency 1205 (Labuhanbatu) is this module's own.
VILLAGE = "1205012001"


def _member(household: uuid.UUID, member: uuid.UUID, version: int, status: str = "active") -> hh.MemberData:
    return hh.MemberData(member_id=member, household_id=household, nik_masked="120501******0001", sex="female",
                         birth_date="1990-01-01", relationship="head", pregnant=False, disability="none",
                         status=status, version=version)


async def test_a_fetch_of_member_events_is_one_upsert_and_the_newest_version_wins(
        referral_settings: ReferralSettings, referral_db: asyncpg.Connection) -> None:
    household, members = uuid.uuid4(), [uuid.uuid4() for _ in range(20)]
    events = [hh.MEMBER_ADDED.new(_member(household, m, 1), subject=str(household), regioncode=VILLAGE)
              for m in members]
    # The first member updated in the same fetch, then an older version of it arriving late.
    events.append(hh.MEMBER_UPDATED.new(_member(household, members[0], 3, "merged"), subject=str(household),
                                        regioncode=VILLAGE))
    events.append(hh.MEMBER_UPDATED.new(_member(household, members[0], 2), subject=str(household),
                                        regioncode=VILLAGE))
    engine = create_engine(referral_settings)
    try:
        with statements_of(engine.sync_engine, lambda: True) as seen:
            applied = await apply_once(create_sessionmaker(engine), "member-batch-test",
                                       HouseholdEvents(referral_settings).handlers(), events)
    finally:
        await engine.dispose()
    assert applied == len(events)
    # The inbox claim, one upsert of the added members and one of the updates.
    upserts = [s for s in seen if "INSERT INTO known_members" in s]
    assert len(upserts) == 2, "\n".join(seen)
    rows = {r["id"]: (r["status"], r["version"]) for r in await referral_db.fetch(
        "SELECT id, status, version FROM known_members WHERE household_id = $1", household)}
    assert len(rows) == 20
    assert rows[members[0]] == ("merged", 3)
    assert all(rows[m] == ("active", 1) for m in members[1:])


def _household(household: uuid.UUID, posyandu: uuid.UUID, version: int) -> hh.HouseholdData:
    return hh.HouseholdData(household_id=household, kk_number_masked="120501******0001", village_code=VILLAGE,
                            posyandu_id=posyandu, status="active", needs_reassignment=False, version=version)


async def _apply(settings: ReferralSettings, events: list[object]) -> list[str]:
    engine = create_engine(settings)
    try:
        with statements_of(engine.sync_engine, lambda: True) as seen:
            await apply_once(create_sessionmaker(engine), f"batch-test-{uuid.uuid4().hex[:6]}",
                             HouseholdEvents(settings).handlers(), events)  # type: ignore[arg-type]
    finally:
        await engine.dispose()
    return seen


async def test_a_fetch_of_registrations_is_one_upsert(referral_settings: ReferralSettings,
                                                      referral_db: asyncpg.Connection) -> None:
    posyandu, households = uuid.uuid4(), [uuid.uuid4() for _ in range(15)]
    seen = await _apply(referral_settings, [
        hh.HOUSEHOLD_REGISTERED.new(_household(h, posyandu, 1), subject=str(h), regioncode=VILLAGE)
        for h in households])
    assert len([s for s in seen if "INSERT INTO known_households" in s]) == 1, "\n".join(seen)
    assert await referral_db.fetchval("SELECT count(*) FROM known_households WHERE id = ANY($1)", households) == 15


async def test_a_republished_registration_at_a_new_place_takes_the_open_referrals_along(
        referral_settings: ReferralSettings, referral_db: asyncpg.Connection) -> None:
    household, before, after = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    need = hh.NeedData(need_id=uuid.uuid4(), household_id=household, member_id=None, member_nik_masked=None,
                       posyandu_id=before, village_code=VILLAGE, spm_field=SpmField("pekerjaan-umum"),
                       category="pekerjaan-umum.sanitation", urgency="high", evidence={"toilet": "none"})
    await _apply(referral_settings, [
        hh.HOUSEHOLD_REGISTERED.new(_household(household, before, 1), subject=str(household), regioncode=VILLAGE),
        hh.NEED_DETECTED.new(need, subject=str(household), regioncode=VILLAGE)])
    assert await referral_db.fetchval("SELECT posyandu_id FROM referrals WHERE need_id = $1", need.need_id) == before
    # A household republish: a snapshot of its registration at its current version, now at another posyandu.
    snapshot = hh.HOUSEHOLD_REGISTERED.new(_household(household, after, 4), subject=str(household),
                                           regioncode=VILLAGE).model_copy(update={"snapshot": True})
    await _apply(referral_settings, [snapshot])
    assert await referral_db.fetchval("SELECT posyandu_id FROM referrals WHERE need_id = $1", need.need_id) == after
    assert await referral_db.fetchval("SELECT version FROM known_households WHERE id = $1", household) == 4
    # An older one arriving late moves nothing back.
    await _apply(referral_settings, [
        hh.HOUSEHOLD_REGISTERED.new(_household(household, before, 2), subject=str(household), regioncode=VILLAGE)])
    assert await referral_db.fetchval("SELECT posyandu_id FROM referrals WHERE need_id = $1", need.need_id) == after
