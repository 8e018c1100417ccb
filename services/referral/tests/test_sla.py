"""SLA clocks: overdue once, escalated once to the field's province agency; deadlines from config and overrides.

The referrals are made through the API (committed); the sweeps run in the test's rolled-back session
(tests/support/database.py), as the background job would, so a sweep at a future time marks and escalates the
other tests' open referrals only inside this test: nothing of it is committed or published.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from services.referral.referrals import reads
from services.referral.referrals.schemas import ReferralPublic
from services.referral.sla.service import run_sla_sweep
from services.referral.tests.factories import (
    RAWA_MAKMUR,
    create_referral,
    known_agency,
    known_household,
    known_posyandu,
    outbox_types,
)
from shared.auth import Principal, Role
from shared.events.topics import SpmField
from tests.support import tokens

FIELD, CATEGORY = "sosial", "sosial.neglected-child"


async def sweep(session: AsyncSession, now: datetime) -> tuple[set[uuid.UUID], set[uuid.UUID]]:
    """One run of the sweep job at `now`, committed as the job does (a savepoint of the test's transaction)."""
    result = await run_sla_sweep(session, now)
    await session.commit()
    return {r.id for r in result.overdue}, {r.id for r in result.escalated}


async def listed(session: AsyncSession, principal: Principal, filters: reads.Filters) -> dict[str, ReferralPublic]:
    """What `GET /api/v1/referrals` lists to the principal with these filters (the session sees the sweeps)."""
    page = await reads.list_referrals(session=session, principal=principal, filters=filters, after=None, limit=500,
                                      now=datetime.now(UTC))
    return {str(r.id): r for r in page.items}


async def test_an_overdue_referral_fires_once_and_escalates_once_to_the_province_agency(
        registry: httpx.AsyncClient, household: httpx.AsyncClient, referral: httpx.AsyncClient,
        household_db: asyncpg.Connection, referral_db: asyncpg.Connection, referral_session: AsyncSession) -> None:
    regency = await known_agency(registry, referral_db, "6472", [FIELD])
    province = await known_agency(registry, referral_db, "64", [FIELD])
    place = await known_posyandu(registry, household_db, RAWA_MAKMUR)
    created = await known_household(household, referral_db, place, RAWA_MAKMUR)
    made = await create_referral(referral, created, spm_field=FIELD, category=CATEGORY, urgency="emergency")
    assert made["agency_id"] == regency
    respond_by, complete_by = (datetime.fromisoformat(made[k]) for k in ("respond_by", "complete_by"))
    created_at = datetime.fromisoformat(made["created_at"])
    assert respond_by - created_at == timedelta(days=1) and complete_by - created_at == timedelta(days=3)
    referral_id = uuid.UUID(made["id"])

    session = referral_session
    overdue, escalated = await sweep(session, respond_by - timedelta(minutes=1))
    assert referral_id not in overdue | escalated
    for run in range(2):  # twice: the second run finds nothing new
        overdue, escalated = await sweep(session, respond_by + timedelta(hours=1))
        assert (referral_id in overdue) == (run == 0) and referral_id not in escalated
    assert await outbox_types(session, made["id"]) == ["posyandu.referral.created.v1",
                                                       "posyandu.referral.overdue.v1"]
    as_regency = Principal(sub="opd", role=Role.OPD, agency_id=uuid.UUID(regency),
                           fields=frozenset({SpmField.SOSIAL}))
    assert made["id"] in await listed(session, as_regency,
                                      reads.Filters(overdue=True, spm_field=SpmField.SOSIAL, region="6472"))

    # Emergency: escalated one day after the completion deadline.
    overdue, escalated = await sweep(session, complete_by + timedelta(hours=23))
    assert referral_id not in escalated
    for run in range(2):
        overdue, escalated = await sweep(session, complete_by + timedelta(days=1, hours=1))
        assert (referral_id in escalated) == (run == 0)
    types = await outbox_types(session, made["id"])
    assert types == ["posyandu.referral.created.v1", "posyandu.referral.overdue.v1",
                     "posyandu.referral.escalated.v1"]
    after = (await listed(session, Principal(sub="admin", role=Role.ADMIN), reads.Filters(region="6472")))[made["id"]]
    assert str(after.escalated_to_agency_id) == province and after.overdue
    # Nothing of the sweeps was committed: the API lists the referral as it was made, not overdue.
    assert await outbox_types(referral_db, made["id"]) == ["posyandu.referral.created.v1"]
    for flag, shown in (("true", False), ("false", True)):
        page = (await referral.get(f"/api/v1/referrals?overdue={flag}&field=sosial&region=6472&limit=500",
                                   headers=tokens.opd(regency, [FIELD]))).json()["items"]
        assert (made["id"] in [r["id"] for r in page]) is shown, flag


async def test_a_response_in_time_and_a_closed_referral_are_never_overdue(
        registry: httpx.AsyncClient, household: httpx.AsyncClient, referral: httpx.AsyncClient,
        household_db: asyncpg.Connection, referral_db: asyncpg.Connection, referral_session: AsyncSession) -> None:
    place = await known_posyandu(registry, household_db, RAWA_MAKMUR)
    created = await known_household(household, referral_db, place, RAWA_MAKMUR)
    answered = await create_referral(referral, created, spm_field=FIELD, category=CATEGORY)
    closed = await create_referral(referral, created, spm_field=FIELD, category=CATEGORY)
    agency = tokens.opd(answered["agency_id"], [FIELD])
    assert (await referral.post(f"/api/v1/referrals/{answered['id']}/receive", headers=agency)).status_code == 200
    assert (await referral.post(f"/api/v1/referrals/{closed['id']}/reject", json={"reason": "Sudah ditangani"},
                                headers=agency)).status_code == 200
    respond_by = datetime.fromisoformat(answered["respond_by"])
    overdue, _ = await sweep(referral_session, respond_by + timedelta(hours=1))
    assert not {uuid.UUID(answered["id"]), uuid.UUID(closed["id"])} & overdue
    complete_by = datetime.fromisoformat(answered["complete_by"])
    overdue, _ = await sweep(referral_session, complete_by + timedelta(hours=1))
    assert uuid.UUID(answered["id"]) in overdue and uuid.UUID(closed["id"]) not in overdue


async def test_an_agency_override_sets_deadlines_in_hours(
        registry: httpx.AsyncClient, household: httpx.AsyncClient, referral: httpx.AsyncClient,
        household_db: asyncpg.Connection, referral_db: asyncpg.Connection) -> None:
    place = await known_posyandu(registry, household_db, RAWA_MAKMUR)
    created = await known_household(household, referral_db, place, RAWA_MAKMUR)
    first = await create_referral(referral, created, spm_field=FIELD, category=CATEGORY, urgency="high")
    override = await referral.post("/api/v1/sla/overrides", headers=tokens.admin(), json={
        "agency_id": first["agency_id"], "category": CATEGORY, "urgency": "high", "respond_within": 4,
        "complete_within": 48, "unit": "hours"})
    assert override.status_code == 201, override.text
    made = await create_referral(referral, created, spm_field=FIELD, category=CATEGORY, urgency="high")
    created_at = datetime.fromisoformat(made["created_at"])
    assert datetime.fromisoformat(made["respond_by"]) - created_at == timedelta(hours=4)
    assert datetime.fromisoformat(made["complete_by"]) - created_at == timedelta(hours=48)
