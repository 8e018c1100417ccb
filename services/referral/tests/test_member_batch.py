"""The referral service learns a fetch's members in one statement (not one per member), newest version winning."""

from __future__ import annotations

import uuid

import asyncpg

from services.referral.consumers.household import HouseholdEvents
from services.referral.settings import ReferralSettings
from services.referral.tests.test_statements import statements_of
from shared.consumer import apply_once
from shared.db import create_engine, create_sessionmaker
from shared.events import household as hh

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
