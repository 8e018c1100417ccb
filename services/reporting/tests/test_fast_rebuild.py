"""The rebuild (staged chunks, one GROUP BY per summary table) gives, row for row, the summaries the consumer keeps
event by event.

A random stream in the reserved regencies 7371 and 6301 (two provinces, so the nation level adds them up) with
merges, moves, status changes, redeliveries and reordering is applied through the consumer's handlers, in
batches as the consumer fetches them, to a database of this module's own: the whole summary tables, every
level from the village to the nation, are compared.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from conftest import Stack
from services.reporting.consumers import GROUP, all_handlers
from services.reporting.settings import ReportingSettings
from services.reporting.summaries.rebuild import rebuild, rebuild_in, rebuild_summaries
from services.reporting.tests.summary_streams import Generator
from shared.consumer import apply_once
from shared.db import sqlalchemy_url
from shared.events import household as hh

VILLAGES = ["7371011001", "7371011002", "7371021003", "6301011001", "6301021002"]
#: Small enough that every kind of aggregate takes several chunks.
SMALL_CHUNK = 4
_AGGREGATES = {"households": "SELECT count(*) FROM households",
               "children": "SELECT count(DISTINCT member_id) FROM measurements",
               "needs": "SELECT count(*) FROM needs", "referrals": "SELECT count(*) FROM referrals",
               "sessions": "SELECT count(*) FROM sessions"}


@pytest.fixture(scope="module")
async def consumed(stack: Stack) -> AsyncIterator[tuple[str, async_sessionmaker[AsyncSession]]]:
    """Two seeded streams applied by the consumer's handlers: shuffled, a sixth of the events twice, in batches
    of 25 (a fetch)."""
    dsn = await stack.migrated_database("reporting", "reporting_fast_rebuild")
    engine = create_async_engine(sqlalchemy_url(dsn))
    sessionmaker = async_sessionmaker(engine, expire_on_commit=False)
    rnd = random.Random(7371)
    events = [e for seed in (7371, 6301) for _, e in Generator(seed=seed, villages=VILLAGES).build().events]
    rnd.shuffle(events)
    events += rnd.sample(events, len(events) // 6)
    types = {e.type for e in events}
    assert {hh.MEMBER_MERGED.name, hh.MEMBER_MOVED.name, hh.HOUSEHOLD_MOVED.name, hh.HOUSEHOLD_CLOSED.name,
            hh.MEMBER_DIED.name} <= types
    handlers = all_handlers()
    for start in range(0, len(events), 25):
        await apply_once(sessionmaker, GROUP, handlers, events[start:start + 25])
    try:
        yield dsn, sessionmaker
    finally:
        await engine.dispose()


async def summary_rows(dsn: str) -> dict[str, list[tuple[Any, ...]]]:
    conn = await asyncpg.connect(dsn)
    try:
        return {table: sorted(tuple(r) for r in await conn.fetch(f"SELECT * FROM {table}"))
                for table in ("summary_stocks", "summary_flows", "summary_agency_flows", "summary_histograms")}
    finally:
        await conn.close()


async def test_the_rebuild_in_small_chunks_gives_the_consumers_rows(
        consumed: tuple[str, async_sessionmaker[AsyncSession]]) -> None:
    dsn, sessionmaker = consumed
    kept = await summary_rows(dsn)
    assert len(kept["summary_stocks"]) > 500 and len(kept["summary_flows"]) > 500 and kept["summary_agency_flows"]
    assert {r[4][0] for r in kept["summary_histograms"]} == {"a", "r"}  # the agencies' and the regions'
    assert {r[0] for rows in kept.values() for r in rows} == {0, 2, 4, 6, 10}
    assert {r[1] for r in kept["summary_stocks"] if r[0] == 2} == {"73", "63"}
    async with sessionmaker() as session:
        aggregates = {kind: (await session.execute(sa.text(sql))).scalar_one() for kind, sql in _AGGREGATES.items()}
    assert min(aggregates.values()) > 2 * SMALL_CHUNK, aggregates  # several chunks of every kind

    assert await rebuild_summaries(sessionmaker=sessionmaker, chunk=SMALL_CHUNK) == sum(aggregates.values())
    assert await summary_rows(dsn) == kept
    # One chunk for each kind gives the same rows.
    assert await rebuild_summaries(sessionmaker=sessionmaker, chunk=10_000) == sum(aggregates.values())
    assert await summary_rows(dsn) == kept


async def test_a_rebuild_replaces_damaged_summaries_and_runs_twice_in_one_transaction(
        consumed: tuple[str, async_sessionmaker[AsyncSession]]) -> None:
    """Whatever the summary rows held is gone (a wrong count, a row left at zero, a row of no aggregate), and the
    staging tables are dropped with the rebuild, so a second one in the same transaction counts nothing twice."""
    dsn, sessionmaker = consumed
    kept = await summary_rows(dsn)
    async with sessionmaker() as session, session.begin():
        await session.execute(sa.text("UPDATE summary_stocks SET n = n + 5 WHERE level = 4"))
        await session.execute(sa.text("UPDATE summary_flows SET n = 0 WHERE level = 10 AND span = 'M'"))
        await session.execute(sa.text("INSERT INTO summary_flows VALUES (6, 'Y', '2025-01-01', '737101', 'x', 3)"))
        await session.execute(sa.text("UPDATE summary_histograms SET counts = array_fill(7::bigint, "
                                      "ARRAY[cardinality(buckets)]) WHERE level = 2"))
    assert await summary_rows(dsn) != kept
    async with sessionmaker() as session, session.begin():
        first = await rebuild_in(session, chunk=SMALL_CHUNK)
        assert await rebuild_in(session, chunk=SMALL_CHUNK) == first
    assert await summary_rows(dsn) == kept


async def test_the_rebuild_command_is_not_bound_by_the_requests_statement_timeout(
        consumed: tuple[str, async_sessionmaker[AsyncSession]]) -> None:
    """Its statements grow with the data (at 1M members one ran past the requests' 60 s on a loaded machine and
    the command failed at its end), so DATABASE_COMMAND_TIMEOUT_SECONDS does not bound them: here its lock waits
    1.5 s for a transaction holding a summary table, past a 0.5 s limit, and the rebuild completes."""
    dsn, sessionmaker = consumed
    kept = await summary_rows(dsn)
    settings = ReportingSettings(database_url=dsn, database_command_timeout_seconds=0.5)
    holder = await asyncpg.connect(dsn)
    try:
        held = holder.transaction()
        await held.start()
        await holder.execute("LOCK TABLE summary_stocks IN ROW SHARE MODE")  # conflicts with the rebuild's EXCLUSIVE

        async def release() -> None:
            await asyncio.sleep(1.5)
            await held.rollback()

        releasing = asyncio.create_task(release())
        counted = await rebuild(settings)
        await releasing
    finally:
        await holder.close()
    async with sessionmaker() as session:
        aggregates = {kind: (await session.execute(sa.text(sql))).scalar_one() for kind, sql in _AGGREGATES.items()}
    assert counted == sum(aggregates.values())
    assert await summary_rows(dsn) == kept
