"""SLA clocks: overdue once, escalated once to the field's province agency; deadlines from config and overrides."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from services.referral.settings import ReferralSettings
from services.referral.sla.service import run_sla_sweep
from services.referral.tests.factories import (
    RAWA_MAKMUR,
    create_referral,
    known_agency,
    known_household,
    known_posyandu,
    outbox_types,
)
from shared.db import create_engine, create_sessionmaker
from tests.support import tokens

FIELD, CATEGORY = "sosial", "sosial.neglected-child"


@pytest.fixture(scope="module")
async def sessions(referral_settings: ReferralSettings) -> AsyncIterator[Any]:
    engine = create_engine(referral_settings)
    yield create_sessionmaker(engine)
    await engine.dispose()


async def sweep(sessions: Any, now: datetime) -> tuple[set[uuid.UUID], set[uuid.UUID]]:
    session: AsyncSession
    async with sessions() as session, session.begin():
        result = await run_sla_sweep(session, now)
    return {r.id for r in result.overdue}, {r.id for r in result.escalated}


async def test_an_overdue_referral_fires_once_and_escalates_once_to_the_province_agency(
        registry: httpx.AsyncClient, household: httpx.AsyncClient, referral: httpx.AsyncClient,
        household_db: asyncpg.Connection, referral_db: asyncpg.Connection, sessions: Any) -> None:
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

    overdue, escalated = await sweep(sessions, respond_by - timedelta(minutes=1))
    assert referral_id not in overdue | escalated
    for _ in range(2):  # twice: the second run finds nothing new
        overdue, escalated = await sweep(sessions, respond_by + timedelta(hours=1))
        assert referral_id not in escalated
    assert await outbox_types(referral_db, made["id"]) == ["posyandu.referral.created.v1",
                                                          "posyandu.referral.overdue.v1"]
    listed = (await referral.get("/api/v1/referrals?overdue=true&field=sosial&region=6472",
                                 headers=tokens.opd(regency, [FIELD]))).json()["items"]
    assert made["id"] in [r["id"] for r in listed]

    # Emergency: escalated one day after the completion deadline.
    overdue, escalated = await sweep(sessions, complete_by + timedelta(hours=23))
    assert referral_id not in escalated
    for _ in range(2):
        await sweep(sessions, complete_by + timedelta(days=1, hours=1))
    types = await outbox_types(referral_db, made["id"])
    assert types == ["posyandu.referral.created.v1", "posyandu.referral.overdue.v1",
                     "posyandu.referral.escalated.v1"]
    after = (await referral.get(f"/api/v1/referrals/{made['id']}", headers=tokens.admin())).json()
    assert after["escalated_to_agency_id"] == province and after["overdue"]


async def test_a_response_in_time_and_a_closed_referral_are_never_overdue(
        registry: httpx.AsyncClient, household: httpx.AsyncClient, referral: httpx.AsyncClient,
        household_db: asyncpg.Connection, referral_db: asyncpg.Connection, sessions: Any) -> None:
    place = await known_posyandu(registry, household_db, RAWA_MAKMUR)
    created = await known_household(household, referral_db, place, RAWA_MAKMUR)
    answered = await create_referral(referral, created, spm_field=FIELD, category=CATEGORY)
    closed = await create_referral(referral, created, spm_field=FIELD, category=CATEGORY)
    agency = tokens.opd(answered["agency_id"], [FIELD])
    assert (await referral.post(f"/api/v1/referrals/{answered['id']}/receive", headers=agency)).status_code == 200
    assert (await referral.post(f"/api/v1/referrals/{closed['id']}/reject", json={"reason": "Sudah ditangani"},
                                headers=agency)).status_code == 200
    respond_by = datetime.fromisoformat(answered["respond_by"])
    overdue, _ = await sweep(sessions, respond_by + timedelta(hours=1))
    assert not {uuid.UUID(answered["id"]), uuid.UUID(closed["id"])} & overdue
    complete_by = datetime.fromisoformat(answered["complete_by"])
    overdue, _ = await sweep(sessions, complete_by + timedelta(hours=1))
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
