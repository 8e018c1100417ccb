"""The same events delivered in another order, or twice, give the same projections and the same numbers."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.reporting.consumers import GROUP, all_handlers
from services.reporting.rebuild.service import apply_event
from services.reporting.settings import ReportingSettings
from services.reporting.tests.factories import Stream, at, previous_month, years_before
from shared.consumer import apply_once
from shared.db import create_engine, create_sessionmaker
from tests.support import tokens

# Maluku Utara (82): four villages, one per delivery order; no other test uses the province.
IN_ORDER, REVERSED, SHUFFLED_TWICE, ONE_BATCH = "8201012001", "8202012004", "8271011001", "8201012002"


def history(village: str) -> Stream:
    """Households, a member who changes, profiles, a measurement, a need resolved and a referral completed."""
    _, first, last = previous_month()
    s = Stream(default_time=at(first, 8))
    homes = [s.household(village) for _ in range(6)]
    for index, home in enumerate(homes):
        member = s.member(home, years_before(last, 3))
        s.member(home, years_before(last, 0, 6), version=2, member_id=member)  # corrected birth date: an infant
        s.measurement(home, member, first + timedelta(days=3), age_days=300, haz="stunted" if index < 2 else "normal")
        s.profile(home, "pekerjaan-umum", {"household": {"toilet": "none"}}, observed_on=first)
        s.profile(home, "pekerjaan-umum", {"household": {"toilet": "shared"}}, observed_on=first + timedelta(1),
                  version=2)
        s.need(home, village, "kesehatan.stunting", detected=at(first, 9), resolved=at(first, 20) if index else None)
        s.referral(village, "kesehatan.stunting", created=at(first, 1), agency_id=None, steps=[
            ("accepted", 5 + index, {"responded_at": at(first, 6 + index)}), ("in-progress", 10, {}),
            ("completed", 30 + index, {})])
    return s


@pytest.fixture(scope="module")
async def sessionmaker(reporting_settings: ReportingSettings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(reporting_settings)
    yield create_sessionmaker(engine)
    await engine.dispose()


async def deliver(sessionmaker: async_sessionmaker[AsyncSession], stream: Stream, order: str) -> None:
    events = [event for _, event in stream.events]
    if order == "reversed":
        events.reverse()
    elif order in ("shuffled-twice", "one-batch"):
        events = events + events
        random.Random(3).shuffle(events)
    handlers = all_handlers()
    if order == "one-batch":
        # As the consumer applies a fetch: one transaction, each batched type in one statement; a member's two
        # versions and every repeat meet in the same statement.
        await apply_once(sessionmaker, GROUP, handlers, events)
        return
    for event in events:
        await apply_event(sessionmaker=sessionmaker, handlers=handlers, event=event)


async def numbers(client: httpx.AsyncClient, village: str) -> dict[str, Any]:
    table = (await client.get("/api/v1/indicators", params={"region": village, "period": previous_month()[0]},
                              headers=tokens.admin())).json()
    [row] = table["rows"]
    return {k: v for k, v in row.items() if k not in ("region_code", "region_name")}


async def test_order_and_repetition_do_not_change_the_numbers(reporting: httpx.AsyncClient,
                                                              sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    for village, order in ((IN_ORDER, "in-order"), (REVERSED, "reversed"), (SHUFFLED_TWICE, "shuffled-twice"),
                           (ONE_BATCH, "one-batch")):
        await deliver(sessionmaker, history(village), order)
    expected = await numbers(reporting, IN_ORDER)
    assert (expected["coverage.households"], expected["coverage.infant"], expected["kesehatan.stunted"],
            expected["pekerjaan-umum.safe_sanitation"], expected["needs.open"], expected["referrals.completed"],
            expected["referrals.response_hours_median"]) == (6, 6, 2, 6, 1, 6, 7.5)
    assert await numbers(reporting, REVERSED) == expected
    assert await numbers(reporting, SHUFFLED_TWICE) == expected
    assert await numbers(reporting, ONE_BATCH) == expected
