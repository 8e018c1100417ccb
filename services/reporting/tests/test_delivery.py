"""The same events delivered in another order, or twice, give the same projections and the same numbers."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.reporting import access
from services.reporting.consumers import GROUP, all_handlers
from services.reporting.indicators.periods import parse_period
from services.reporting.indicators.service import indicator_table
from services.reporting.rebuild.service import apply_event
from services.reporting.summaries.contributions import within_stated_error
from services.reporting.tests.factories import Stream, at, previous_month, years_before
from shared.auth import Principal, Role
from shared.consumer import apply_once
from tests.support.database import sessions_of

# Maluku Utara (82): four villages, one per delivery order, that no other test writes to. The events are applied
# in the test's rolled-back transaction (tests/support/database.py): each delivery's commit is a savepoint.
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


async def numbers(session: AsyncSession, village: str) -> dict[str, Any]:
    """The village's row of the indicator table, as `GET /api/v1/indicators` gives it to an admin."""
    admin = Principal(sub="admin", role=Role.ADMIN)
    audience = await access.resolve(session=session, principal=admin, region=village, field=None)
    table = await indicator_table(session=session, audience=audience, period=parse_period(previous_month()[0]),
                                  by=None, lang="en", threshold=5)  # an admin: nothing is suppressed
    [row] = table.rows
    return {k: v for k, v in row.items() if k not in ("region_code", "region_name")}


async def test_order_and_repetition_do_not_change_the_numbers(reporting_session: AsyncSession) -> None:
    for village, order in ((IN_ORDER, "in-order"), (REVERSED, "reversed"), (SHUFFLED_TWICE, "shuffled-twice"),
                           (ONE_BATCH, "one-batch")):
        await deliver(sessions_of(reporting_session), history(village), order)
    expected = await numbers(reporting_session, IN_ORDER)
    assert (expected["coverage.households"], expected["coverage.infant"], expected["kesehatan.stunted"],
            expected["pekerjaan-umum.safe_sanitation"], expected["needs.open"],
            expected["referrals.completed"]) == (6, 6, 2, 6, 1, 6)
    assert within_stated_error(expected["referrals.response_hours_median"], 7.5)
    assert await numbers(reporting_session, REVERSED) == expected
    assert await numbers(reporting_session, SHUFFLED_TWICE) == expected
    assert await numbers(reporting_session, ONE_BATCH) == expected
