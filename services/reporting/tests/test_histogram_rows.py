"""A duration histogram is one row (summary_histograms): changes merge bucket by bucket whatever their order or
batching, a bucket brought to zero leaves the arrays, a histogram left empty leaves the table, and a contribution's
bucket keys go to the histograms, not to the flow tables."""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.reporting.summaries import store
from services.reporting.summaries.contributions import Contribution, bucket_key
from services.reporting.summaries.counting import add_histograms

MONTH = date(2024, 2, 1)
KEY = (2, "M", MONTH, "75", "ref|sosial|rh")
OTHER = (2, "M", MONTH, "75", "ref|sosial|ch")


async def histograms(session: AsyncSession) -> dict[str, tuple[list[int], list[int]]]:
    rows = await session.execute(sa.text(
        "SELECT key, buckets, counts FROM summary_histograms WHERE region LIKE '75%' AND month = :m"), {"m": MONTH})
    return {key: (list(buckets), list(counts)) for key, buckets, counts in rows}


async def test_changes_merge_bucket_by_bucket_and_empty_histograms_go(reporting_session: AsyncSession) -> None:
    session = reporting_session
    await add_histograms(session, store.HISTOGRAMS, {KEY: {40: 2, -3: 1, 0: 1}, OTHER: {7: 1}})
    assert await histograms(session) == {"ref|sosial|rh": ([-3, 0, 40], [1, 1, 2]), "ref|sosial|ch": ([7], [1])}
    # A referral's response moved from bucket 40 to 41; one of bucket 0 subtracted; a zero change is no change.
    await add_histograms(session, store.HISTOGRAMS, {KEY: {40: -1, 41: 1, 0: -1, 5: 0}})
    assert (await histograms(session))["ref|sosial|rh"] == ([-3, 40, 41], [1, 1, 1])
    # Brought to zero: the histogram's row is gone, the other stays.
    await add_histograms(session, store.HISTOGRAMS, {KEY: {-3: -1, 40: -1, 41: -1}})
    assert await histograms(session) == {"ref|sosial|ch": ([7], [1])}
    # Out of order: a subtraction first (a negative count for now), then its addition; nothing stays behind.
    await add_histograms(session, store.HISTOGRAMS, {KEY: {9: -1}})
    assert (await histograms(session))["ref|sosial|rh"] == ([9], [-1])
    await add_histograms(session, store.HISTOGRAMS, {KEY: {9: 1}})
    assert await histograms(session) == {"ref|sosial|ch": ([7], [1])}


async def test_a_contributions_buckets_go_to_their_histograms_at_every_level(reporting_session: AsyncSession) -> None:
    change = Contribution()
    change.flow("7501012001", "ref|sosial|rh|12", MONTH)
    change.flow("7501012001", "ref|sosial|rh|12", MONTH)
    change.flow("7501012001", "ref|sosial|served|rh", MONTH)  # a category named like a kind: a count
    await store.add(reporting_session, change)
    found = {(level, span, key): (list(b), list(c)) for level, span, key, b, c in await reporting_session.execute(
        sa.text("SELECT level, span, key, buckets, counts FROM summary_histograms WHERE region LIKE '75%'"))}
    # Every level within province 75 (the nation's row holds other tests' referrals too).
    assert found == {(level, span, "ref|sosial|rh"): ([12], [2]) for level in (2, 4, 6, 10) for span in "MQY"}
    flows = {key for (key,) in await reporting_session.execute(
        sa.text("SELECT DISTINCT key FROM summary_flows WHERE region LIKE '75%'"))}
    assert flows == {"ref|sosial|served|rh"}
    assert bucket_key("ref|sosial|rh|-12") == ("ref|sosial|rh", -12) and bucket_key("ref|sosial|served|rh") is None
