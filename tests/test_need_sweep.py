"""The daily need sweep, end to end: with the household service's clock moved forward, a member whose age crosses a
rule's threshold gets (or loses) exactly one need, announced as an edit announces it, and the referral service
acts on it; once a day however many replicas or restarts; nobody else is touched.

Kota Kupang (5371, province 53), a regency no other test uses; its regions are imported here.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
import sqlalchemy as sa
from asgi_lifespan import LifespanManager
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from services.household.app import spec as household_spec
from services.household.immunization.schedule import add_months, national_versions, reached, schedule_of
from services.household.needs.sweep import _SWEEP_LOCK, latest_birth_date_for_years
from services.household.needs.sweep import run_daily_sweep as sweep_once
from services.household.settings import HouseholdSettings
from services.household.tables import NeedSweep
from shared.db import create_engine, create_sessionmaker
from shared.service import create_service_app
from tests.support import tokens
from tests.support.database import sessions_of
from tests.support.factories import known_agency, known_posyandu
from tests.support.waiting import eventually

KUPANG_REGIONS = ("kode,nama\n53,Nusa Tenggara Timur\n53.71,Kota Kupang\n53.71.01,Alak\n"
                  "53.71.01.1001,Namosain\n53.71.01.1002,Nunbaun Sabu\n")
NAMOSAIN = "5371011001"
_serial = iter(range(1, 10_000))


class MovableClock:
    """The household service's clock, on a day the test chooses."""

    def __init__(self, day: date) -> None:
        self.day = day
        self.reads = 0

    def __call__(self) -> datetime:
        self.reads += 1
        return datetime(self.day.year, self.day.month, self.day.day, 1, 0, tzinfo=UTC)


@dataclasses.dataclass(frozen=True)
class Kupang:
    posyandu_id: str
    agency_id: str


@pytest.fixture(scope="module")
async def kupang(registry: httpx.AsyncClient, household: httpx.AsyncClient, referral: httpx.AsyncClient,
                 household_settings: HouseholdSettings, referral_settings: Any) -> Kupang:
    imported = await registry.post("/api/v1/regions/import", content=KUPANG_REGIONS.encode(),
                                   headers={**tokens.admin(), "Content-Type": "text/csv"})
    assert imported.status_code == 200, imported.text
    household_db = await asyncpg.connect(household_settings.database_url)
    referral_db = await asyncpg.connect(referral_settings.database_url)
    try:
        async def village_known() -> bool:
            return bool(await household_db.fetchval("SELECT count(*) FROM known_regions WHERE code = $1", NAMOSAIN))

        await eventually(village_known, "the household service to learn Namosain")
        agency = await known_agency(registry, referral_db, "5371", ["sosial", "kesehatan"])
        posyandu = await known_posyandu(registry, household_db, NAMOSAIN)
    finally:
        await household_db.close()
        await referral_db.close()
    return Kupang(posyandu_id=posyandu, agency_id=agency)


@pytest.fixture
async def sweeps(household_settings: HouseholdSettings, household_db: asyncpg.Connection) -> AsyncIterator[Any]:
    """A sessionmaker of the household database, with no sweep recorded yet (only these tests sweep)."""
    await household_db.execute("DELETE FROM need_sweeps")
    engine = create_engine(household_settings)
    try:
        yield create_sessionmaker(engine)
    finally:
        await engine.dispose()


def _nik(birth: date, sex: str) -> str:
    day = birth.day + (40 if sex == "female" else 0)
    return f"537101{day:02d}{birth:%m%y}{next(_serial) + 3000:04d}"


async def _household(client: httpx.AsyncClient, place: Kupang, *members: dict[str, Any],
                     profiles: dict[str, Any] | None = None) -> dict[str, Any]:
    body = {"kk_number": f"537101140519{next(_serial) + 3000:04d}", "village_code": NAMOSAIN,
            "posyandu_id": place.posyandu_id, "address": "Jl. Sumba No. 4", "rt": "002", "rw": "001",
            "members": [{**m, "birth_date": m["birth_date"].isoformat(), "nik": _nik(m["birth_date"], m["sex"])}
                        for m in members]}
    kader = tokens.kader([place.posyandu_id])
    response = await client.post("/api/v1/households", json=body, headers=kader)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    ids = {m["name"]: m["id"] for m in created["members"]}
    for spm_field, profile in (profiles or {}).items():
        # Member sections are given by the member's name.
        if "members" in profile:
            profile = {**profile, "members": {ids[name]: section for name, section in profile["members"].items()}}
        put = await client.put(f"/api/v1/households/{created['id']}/profiles/{spm_field}", json=profile,
                               headers=kader)
        assert put.status_code == 201, put.text
    return created


def _person(birth: date, sex: str = "female", relationship: str = "head", name: str = "Maria Bessie") -> dict[str, Any]:
    return {"name": name, "sex": sex, "birth_date": birth, "relationship": relationship}


#: Alone at decile 3: a neglected-elderly need from 60 (DOMAIN.md §6).
ALONE_AND_POOR = {"sosial": {"household": {"dtsen_decile": 3}, "members": {"Maria Bessie": {"lives_alone": True}}}}


async def _needs(household_db: asyncpg.Connection, household_id: str) -> list[asyncpg.Record]:
    return await household_db.fetch("SELECT * FROM needs WHERE household_id = $1 ORDER BY detected_at",
                                    uuid.UUID(household_id))


async def _need_events(household_db: asyncpg.Connection, household_id: str) -> list[str]:
    rows = await household_db.fetch("SELECT event_type FROM outbox WHERE key = $1 AND event_type LIKE '%need%' "
                                    "ORDER BY id", household_id)
    return [r["event_type"] for r in rows]


async def test_a_member_turning_60_gets_one_need_and_one_referral_on_that_day_and_nobody_else_is_touched(
        kupang: Kupang, household: httpx.AsyncClient, referral: httpx.AsyncClient, sweeps: Any,
        household_db: asyncpg.Connection, referral_db: asyncpg.Connection) -> None:
    day = date.today() + timedelta(days=40)
    turning = await _household(household, kupang, _person(latest_birth_date_for_years(60, day)),
                               profiles=ALONE_AND_POOR)
    # Already 70 and alone: the need was detected when recorded; a stale row (resolved behind the service's back)
    # shows whether the sweep looked at this household at all.
    older = await _household(household, kupang, _person(date(1955, 1, 1)), profiles=ALONE_AND_POOR)
    [stale] = await _needs(household_db, older["id"])
    await household_db.execute("UPDATE needs SET status = 'resolved' WHERE id = $1", stale["id"])
    assert await _needs(household_db, turning["id"]) == []

    before = await sweep_once(sweeps, clock=MovableClock(day - timedelta(days=1)), batch_size=50)
    assert before is not None and uuid.UUID(turning["id"]) not in before.households
    assert await _needs(household_db, turning["id"]) == []

    on_the_day = await sweep_once(sweeps, clock=MovableClock(day), batch_size=50)
    assert on_the_day is not None and (on_the_day.since, on_the_day.swept_on) == (day, day)
    assert uuid.UUID(turning["id"]) in on_the_day.households
    assert uuid.UUID(older["id"]) not in on_the_day.households
    [need] = await _needs(household_db, turning["id"])
    assert (need["category"], need["status"], need["member_id"]) == (
        "sosial.neglected-elderly", "open", uuid.UUID(turning["members"][0]["id"]))
    assert await _need_events(household_db, turning["id"]) == ["posyandu.household.need-detected.v1"]

    async def referred() -> list[asyncpg.Record] | None:
        rows = await referral_db.fetch("SELECT * FROM referrals WHERE need_id = $1", need["id"])
        return rows or None

    [made] = await eventually(referred, "the referral of the swept need")
    assert (made["category"], str(made["agency_id"]), made["origin"]) == (
        "sosial.neglected-elderly", kupang.agency_id, "need")
    # The same day again does nothing; the stale household stays as it was.
    assert await sweep_once(sweeps, clock=MovableClock(day), batch_size=50) is None
    assert len(await _needs(household_db, turning["id"])) == 1
    assert [n["status"] for n in await _needs(household_db, older["id"])] == ["resolved"]
    await asyncio.sleep(0.5)  # time for a second, wrong referral to arrive
    assert await referral_db.fetchval("SELECT count(*) FROM referrals WHERE household_id = $1",
                                      uuid.UUID(turning["id"])) == 1


@contextlib.asynccontextmanager
async def instance(settings: HouseholdSettings) -> AsyncIterator[httpx.AsyncClient]:
    """Another instance of the household service on these settings, without consumers (the session's app
    consumes): its API, and its background jobs."""
    app = create_service_app(dataclasses.replace(household_spec(settings), subscriptions=[]), settings)
    async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30) as manager:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app),
                                     base_url="http://household") as client:
            yield client


async def _record_doses(client: httpx.AsyncClient, place: Kupang, created: dict[str, Any], member_id: str,
                        doses: list[tuple[str, int, date]]) -> None:
    for vaccine, number, given_on in doses:
        response = await client.post(f"/api/v1/households/{created['id']}/members/{member_id}/immunizations",
                                     json={"vaccine": vaccine, "dose_number": number,
                                           "given_on": given_on.isoformat(), "place": "posyandu"},
                                     headers=tokens.kader([place.posyandu_id]))
        assert response.status_code == 201, response.text


async def test_a_child_turning_two_without_a_booster_gets_one_need_and_one_referral_and_the_dose_resolves_it(
        kupang: Kupang, household: httpx.AsyncClient, referral: httpx.AsyncClient, sweeps: Any,
        household_settings: HouseholdSettings, household_db: asyncpg.Connection,
        referral_db: asyncpg.Connection) -> None:
    birthday = date.today() + timedelta(days=1)
    born = add_months(birthday, -24)
    created = await _household(household, kupang, _person(born, sex="male", relationship="child", name="Yosef"),
                               _person(date(1996, 5, 5)))
    child = next(m["id"] for m in created["members"] if m["name"] == "Yosef")
    # Every dose of the schedule on its day, but the fourth DPT-HB-Hib (due at 18 months, overdue at two).
    schedule = schedule_of(national_versions()).in_force(date.today())
    assert schedule is not None
    given = sorted(((r.vaccine, r.dose, reached(born, r.due_age)) for r in schedule.rows
                    if r.applies_in(NAMOSAIN) and (r.vaccine, r.dose) != ("dpt-hb-hib", 4)), key=lambda d: d[2])
    await _record_doses(household, kupang, created, child, given)
    # Complete for his age until his birthday (recording the history one dose at a time opened and closed a need).
    assert [n for n in await _needs(household_db, created["id"]) if n["status"] == "open"] == []
    events_before = len(await _need_events(household_db, created["id"]))

    await sweep_once(sweeps, clock=MovableClock(birthday - timedelta(days=1)), batch_size=50)
    assert [n for n in await _needs(household_db, created["id"]) if n["status"] == "open"] == []
    result = await sweep_once(sweeps, clock=MovableClock(birthday), batch_size=50)
    assert result is not None and uuid.UUID(created["id"]) in result.households
    [need] = [n for n in await _needs(household_db, created["id"]) if n["status"] == "open"]
    assert (need["category"], str(need["member_id"])) == ("kesehatan.immunization", child)
    evidence = json.loads(need["evidence"])
    assert evidence["overdue"] == ["dpt-hb-hib-4"] and evidence["age_months"] == 24
    assert (await _need_events(household_db, created["id"]))[events_before:] == [
        "posyandu.household.need-detected.v1"]
    # The status the household publishes (and reporting counts) turned with the day too.
    profile = await household_db.fetchval("SELECT data FROM profile_versions WHERE household_id = $1 AND spm_field = "
                                          "'kesehatan' ORDER BY version DESC LIMIT 1", uuid.UUID(created["id"]))
    assert json.loads(profile)["members"][child]["immunization_status"] == "incomplete"

    async def referred() -> list[asyncpg.Record] | None:
        return await referral_db.fetch("SELECT * FROM referrals WHERE need_id = $1", need["id"]) or None

    [made] = await eventually(referred, "the referral of the swept need")
    assert (made["category"], str(made["agency_id"])) == ("kesehatan.immunization", kupang.agency_id)

    # On his birthday the kader records the booster (through an instance whose clock says it is that day).
    on_the_day = household_settings.model_copy(update={"clock": MovableClock(birthday)})
    async with instance(on_the_day) as client:
        await _record_doses(client, kupang, created, child, [("dpt-hb-hib", 4, birthday)])
    assert await household_db.fetchval("SELECT status FROM needs WHERE id = $1", need["id"]) == "resolved"
    assert [n for n in await _needs(household_db, created["id"]) if n["status"] == "open"] == []
    assert (await _need_events(household_db, created["id"]))[events_before:] == [
        "posyandu.household.need-detected.v1", "posyandu.household.need-resolved.v1"]

    async def told() -> asyncpg.Record | None:
        return await referral_db.fetchrow("SELECT * FROM referrals WHERE need_id = $1 AND need_resolved_at IS NOT "
                                          "NULL", need["id"])

    await eventually(told, "the referral service to learn the need resolved")
    assert await referral_db.fetchval("SELECT count(*) FROM referrals WHERE need_id = $1", need["id"]) == 1


async def test_missed_days_are_caught_up_by_the_next_sweep(
        kupang: Kupang, household: httpx.AsyncClient, household_session: AsyncSession) -> None:
    """In the test's rolled-back session (tests/support/database.py): a sweep history of its own, and what the
    sweeps find in everybody's households is committed for no one else."""
    day = date.today() + timedelta(days=70)
    # Turned 18 two days before the sweep ran again: the hypertension threshold for adults.
    created = await _household(household, kupang, _person(latest_birth_date_for_years(18, day - timedelta(days=2)),
                                                           sex="male", name="Petrus Ndun"),
                               profiles={"kesehatan": {"members": {"Petrus Ndun": {"systolic_bp": 150}}}})
    session = household_session
    await session.execute(sa.delete(NeedSweep))  # the other tests' sweeps, for this transaction only

    async def categories() -> list[str]:
        found = await session.scalars(sa.text("SELECT category FROM needs WHERE household_id = :id"),
                                      {"id": uuid.UUID(created["id"])})
        return list(found)

    assert await categories() == []
    await sweep_once(sessions_of(session), clock=MovableClock(day - timedelta(days=4)), batch_size=50)
    result = await sweep_once(sessions_of(session), clock=MovableClock(day), batch_size=50)
    assert result is not None and result.since == day - timedelta(days=3)
    assert await categories() == ["kesehatan.hypertension"]
    recorded = (await session.execute(sa.select(col(NeedSweep.swept_on), col(NeedSweep.since))
                                      .order_by(col(NeedSweep.swept_on)))).all()
    assert [tuple(r) for r in recorded] == [
        (day - timedelta(days=4), day - timedelta(days=4)), (day, day - timedelta(days=3))]


async def test_two_replicas_sweeping_at_once_sweep_once(
        kupang: Kupang, household: httpx.AsyncClient, household_settings: HouseholdSettings, sweeps: Any,
        household_db: asyncpg.Connection) -> None:
    day = date.today() + timedelta(days=100)
    created = await _household(household, kupang, _person(latest_birth_date_for_years(60, day)),
                               profiles=ALONE_AND_POOR)
    other = create_engine(household_settings)
    try:
        # While a replica holds the sweep's lock, another sweeps nothing and records nothing.
        holder = await asyncpg.connect(household_settings.database_url)
        try:
            await holder.execute("SELECT pg_advisory_lock($1)", _SWEEP_LOCK)
            assert await sweep_once(sweeps, clock=MovableClock(day), batch_size=50) is None
            assert await household_db.fetchval("SELECT count(*) FROM need_sweeps") == 0
        finally:
            await holder.close()
        results = await asyncio.gather(*[sweep_once(maker, clock=MovableClock(day), batch_size=1)
                                         for maker in (sweeps, create_sessionmaker(other))])
    finally:
        await other.dispose()
    assert len([r for r in results if r is not None]) == 1
    assert await household_db.fetchval("SELECT count(*) FROM need_sweeps WHERE swept_on = $1", day) == 1
    assert len(await _needs(household_db, created["id"])) == 1
    assert await _need_events(household_db, created["id"]) == ["posyandu.household.need-detected.v1"]


async def test_the_service_sweeps_at_start_up_and_a_restart_does_not_sweep_again(
        kupang: Kupang, household: httpx.AsyncClient, household_settings: HouseholdSettings, sweeps: Any,
        household_db: asyncpg.Connection) -> None:
    day = date.today() + timedelta(days=130)
    created = await _household(household, kupang, _person(latest_birth_date_for_years(60, day)),
                               profiles=ALONE_AND_POOR)
    await sweep_once(sweeps, clock=MovableClock(day - timedelta(days=1)), batch_size=50)
    clock = MovableClock(day)
    settings = household_settings.model_copy(update={"need_sweep_enabled": True, "clock": clock,
                                                     "need_sweep_interval_seconds": 0.2})

    async def swept(on: date) -> asyncpg.Record | None:
        return await household_db.fetchrow("SELECT * FROM need_sweeps WHERE swept_on = $1", on)

    async with instance(settings):
        first = await eventually(lambda: swept(day), "the sweep at start-up")
    assert len(await _needs(household_db, created["id"])) == 1

    async with instance(settings):  # restarted
        reads = clock.reads

        async def looked_twice() -> bool:
            return clock.reads >= reads + 2

        await eventually(looked_twice, "the restarted job to look at the day twice")
        clock.day = day + timedelta(days=1)  # the job keeps running: it sweeps the next day, not this one again
        await eventually(lambda: swept(day + timedelta(days=1)), "the next day's sweep")
    again = await swept(day)
    assert again is not None and again["finished_at"] == first["finished_at"]
    assert len(await _needs(household_db, created["id"])) == 1
    assert await _need_events(household_db, created["id"]) == ["posyandu.household.need-detected.v1"]
