"""The answer rows (summaries/answers.py) give what the birth-date histogram gives, on every held day, whatever
the stream, the batches and the rolls; a day not held falls back to the histogram.

Each test has a database of its own (the consumer's handlers applied with apply_once, no broker), in regencies
7301 and 7302 (this module's), so no background roll and no other test's events come in between; the HTTP test
goes through the session's reporting app, in village 7301011001.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import sys
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from conftest import Stack
from services.reporting.consumers import GROUP, all_handlers
from services.reporting.indicators.periods import parse_period
from services.reporting.indicators.repository import Scope
from services.reporting.settings import ReportingSettings
from services.reporting.summaries import answers, reads, rebuild
from services.reporting.summaries.reads import BANDS, band_sql
from services.reporting.tests.factories import Stream, publish, until_consumed
from services.reporting.tests.summary_streams import Generator
from shared.consumer import apply_once
from shared.db import create_engine, create_sessionmaker, sqlalchemy_url
from shared.events.catalogue import EventType
from shared.events.envelope import CloudEvent
from shared.events.topics import SpmField
from tests.support import tokens
from tests.support.clock import set_clock

ROOT = Path(__file__).resolve().parents[3]
FIELDS = tuple(f.value for f in SpmField)
VILLAGES = ["7301011001", "7301011002", "7301021003", "7302011001", "7302021001"]
SCOPES = [("73", 2), ("73", 4), ("7301", 6), ("7301", 10), ("7302011001", 10), ("", 2)]
MONTHS = 24
VILLAGE = "7302011001"


def clock_at(now: list[datetime]) -> Any:
    return lambda: now[0]


def noon(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 12, tzinfo=UTC)


@pytest.fixture
async def private(stack: Stack, request: pytest.FixtureRequest) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    dsn = await stack.migrated_database("reporting", f"reporting_answers_{request.node.name[5:40].lower()}")
    engine = create_async_engine(sqlalchemy_url(dsn))
    yield async_sessionmaker(engine, expire_on_commit=False)
    await engine.dispose()


async def apply(sessions: async_sessionmaker[AsyncSession], events: list[tuple[EventType, CloudEvent]],
                batch: int = 50) -> None:
    handlers = all_handlers()
    for start in range(0, len(events), batch):
        await apply_once(sessions, GROUP, handlers, [e for _, e in events[start:start + batch]])


def scope_on(day: date, today: date, prefix: str = "73", length: int = 4) -> Scope:
    return Scope(prefix, length, parse_period(f"{day:%Y-%m}", today), FIELDS)


def in_73(found: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    return {r: v for r, v in found.items() if r.startswith("73") and v}


async def read_both(sessions: async_sessionmaker[AsyncSession],
                    scope: Scope) -> tuple[dict[str, dict[str, int]] | None, dict[str, dict[str, int]]]:
    """The stocks read from the answers (None if the day is not held) and from the histogram."""
    async with sessions() as session, session.begin():
        held = await reads._answers(session, scope) is not None
        found = await reads._stocks(session, scope)
        histogram = await reads._histogram(session, scope)
    return (in_73(found) if held else None), in_73(histogram)


async def answer_rows(sessions: async_sessionmaker[AsyncSession]) -> list[tuple[Any, ...]]:
    async with sessions() as session:
        return [tuple(r) for r in await session.execute(sa.text(
            "SELECT level, as_of, region, key, band, n FROM summary_answers ORDER BY 1, 2, 3, 4, 5"))]


async def derived_rows(sessions: async_sessionmaker[AsyncSession]) -> list[tuple[Any, ...]]:
    """The answer rows a fresh derivation of every held day gives (rolled back)."""
    async with sessions() as session:
        async with session.begin():
            await answers.lock_summaries(session)
            await answers.derive_held(session)
            rows = [tuple(r) for r in await session.execute(sa.text(
                "SELECT level, as_of, region, key, band, n FROM summary_answers ORDER BY 1, 2, 3, 4, 5"))]
            await session.rollback()
    return rows


async def held(sessions: async_sessionmaker[AsyncSession]) -> set[date]:
    async with sessions() as session:
        return set(await answers.held_days(session))


async def roll(sessions: async_sessionmaker[AsyncSession], now: list[datetime]) -> answers.RollResult | None:
    return await answers.run_daily_roll(sessions, clock=clock_at(now), snapshot_months=MONTHS)


# -- PostgreSQL's month arithmetic, in Python ---------------------------------------------------------------------

def edge_days() -> list[date]:
    """Every day of 2023 to 2025 (2024 has a 29 February), and the month ends of 1999 to 2001 (2000: leap)."""
    days = [date(2023, 1, 1) + timedelta(days=i) for i in range(3 * 365 + 1)]
    days += [date(y, m, 1) - timedelta(days=1) for y in (1999, 2000, 2001) for m in range(1, 13)]
    return days


MONTH_COUNTS = sorted({k for low, high in BANDS.values() for k in (low, (high or 0) + 1)} | {1, 13, 25, 1200})


async def test_the_python_month_arithmetic_equals_postgresqls(stack: Stack) -> None:
    dsn = await stack.migrated_database("reporting", "reporting_answers_months")
    conn = await asyncpg.connect(dsn)
    try:
        days = edge_days()
        rows = await conn.fetch("SELECT d, k, (d - make_interval(months => k))::date AS back "
                                "FROM unnest($1::date[]) d, unnest($2::int[]) k", days, MONTH_COUNTS)
        assert len(rows) == len(days) * len(MONTH_COUNTS)
        assert [(r["d"], r["k"], answers.months_before(r["d"], r["k"])) for r in rows] == [
            (r["d"], r["k"], r["back"]) for r in rows]
        # The band rule itself: reads.band_sql (the histogram's and the derivation's) against answers.in_band,
        # for birth dates on either side of every band's edges on every edge day.
        rnd = random.Random(29)
        pairs = []
        for on in [*rnd.sample(days, 300), date(2024, 2, 29), date(2025, 2, 28), date(2024, 3, 31), date(2025, 3, 31)]:
            for k in MONTH_COUNTS[:-1]:
                edge = answers.months_before(on, k)
                pairs += [(edge + timedelta(days=s), on) for s in (-1, 0, 1)]
        columns = ", ".join(f"({band_sql(*b).replace('CAST(:as_of AS date)', 'x.on_day')}) AS {name}"
                            for name, b in BANDS.items())
        found = await conn.fetch(f"SELECT x.i, {columns} FROM unnest($1::int[], $2::date[], $3::date[]) "
                                 "AS x (i, born, on_day) ORDER BY x.i", list(range(len(pairs))),
                                 [b for b, _ in pairs], [o for _, o in pairs])
        assert len(found) == len(pairs) > 10_000
        for row, (born, on) in zip(found, pairs, strict=True):
            assert {name: row[name] for name in BANDS} == {name: answers.in_band(born, on, name) for name in BANDS}, (
                born, on)
    finally:
        await conn.close()


# -- Random streams ------------------------------------------------------------------------------------------------

async def assert_answers_equal_the_histogram(sessions: async_sessionmaker[AsyncSession], today: date) -> int:
    """On every month end held of 2025 and today, and for the periods running on today (the month, its quarter,
    the year, and the months after today's: the stock rows dated after today's month added), the stocks read
    through the answers are the histogram's; and the answer rows are those a fresh derivation gives."""
    compared = 0
    periods = [f"{day:%Y-%m}" for day in sorted(await held(sessions)) if day.year == 2025]
    periods += [f"2025-Q{(today.month - 1) // 3 + 1}", "2025", "2025-06"]
    for period in periods:
        for prefix, length in SCOPES:
            found, expected = await read_both(sessions, Scope(prefix, length, parse_period(period, today), FIELDS))
            assert found == expected, (period, prefix, length)
            compared += sum(len(v) for v in expected.values())
    assert await answer_rows(sessions) == await derived_rows(sessions)
    return compared


async def test_answers_equal_the_histogram_after_random_streams(
        private: async_sessionmaker[AsyncSession]) -> None:
    """Shuffled, redelivered, in batches, late events for closed months (whose snapshots move): on today and on
    every month end, the answers give the histogram's figures, and the rows a fresh derivation gives."""
    today = date(2025, 6, 15)
    now = [noon(today)]
    assert (result := await roll(private, now)) is not None and result.derived == sorted(
        answers.wanted_days(today, MONTHS))
    rnd = random.Random(7301)
    events = list(Generator(seed=7301, villages=VILLAGES).build().events)
    rnd.shuffle(events)
    held_back = len(events) // 5
    first, late = events[:-held_back], events[-held_back:]
    first += rnd.sample(first, len(first) // 6)
    await apply(private, first, batch=37)
    assert await assert_answers_equal_the_histogram(private, today) > 300
    before = await answer_rows(private)

    late += rnd.sample(events, 40)
    await apply(private, late, batch=11)
    assert await assert_answers_equal_the_histogram(private, today) > 300
    after = await answer_rows(private)
    moved = {row[1] for row in set(before) ^ set(after)}
    assert {date(2025, 1, 31), date(2025, 3, 31), today} <= moved, moved  # closed months' snapshots moved too

    # Today in April: May's and June's stock rows are dated after today's month (the running quarter and year
    # add them to the answers).
    today = date(2025, 4, 15)
    assert await roll(private, [noon(today)]) is not None
    assert await assert_answers_equal_the_histogram(private, today) > 300


# -- The roll --------------------------------------------------------------------------------------------------------

def children(s: Stream, home: Any) -> None:
    """On 16 June 2025: one child turns 12 months, one 24 and one 60 (born 16 June 2024, 2023 and 2020)."""
    for born in (date(2024, 6, 16), date(2023, 6, 16), date(2020, 6, 16)):
        s.member(home, born)


async def bands(sessions: async_sessionmaker[AsyncSession], day: date, today: date) -> dict[str, int]:
    found, expected = await read_both(sessions, scope_on(day, today, "7302", 4))
    assert found == expected, day
    return {k: v for k, v in expected.get("7302", {}).items()
            if k.startswith("coverage.") or k.startswith("kesehatan.children")}


async def test_the_roll_across_a_day_and_a_month_and_a_missed_day(private: async_sessionmaker[AsyncSession]) -> None:
    s = Stream(default_time=datetime(2025, 6, 1, 8, tzinfo=UTC))
    home = s.household(VILLAGE)
    children(s, home)
    now = [noon(date(2025, 6, 15))]
    await roll(private, now)
    await apply(private, s.events)
    assert await bands(private, date(2025, 6, 15), date(2025, 6, 15)) == {
        "coverage.members": 3, "coverage.households": 1, "coverage.infant": 1, "coverage.toddler": 2,
        "kesehatan.children_under_two": 2, "kesehatan.children_under_five": 3}

    now[0] = noon(date(2025, 6, 16))  # the three turn 12, 24 and 60 months
    result = await roll(private, now)
    assert result is not None and (result.derived, result.dropped) == ([date(2025, 6, 16)], [date(2025, 6, 15)])
    assert await bands(private, date(2025, 6, 16), date(2025, 6, 16)) == {
        "coverage.members": 3, "coverage.households": 1, "coverage.toddler": 2, "coverage.school_age": 1,
        "kesehatan.children_under_two": 1, "kesehatan.children_under_five": 2}
    s.events.clear()
    s.member(home, date(2025, 6, 16))  # born today, added by the consumer to today's answers
    await apply(private, s.events)
    assert (await bands(private, date(2025, 6, 16), date(2025, 6, 16)))["coverage.infant"] == 1
    assert await answer_rows(private) == await derived_rows(private)
    assert await roll(private, now) is None  # the day is held: nothing to do

    now[0] = noon(date(2025, 7, 1))  # 17 to 30 June missed: June's snapshot is caught up
    result = await roll(private, now)
    assert result is not None
    assert result.derived == [date(2025, 6, 30), date(2025, 7, 1)]
    assert result.dropped == [date(2023, 6, 30), date(2025, 6, 16)]
    assert await held(private) == answers.wanted_days(date(2025, 7, 1), MONTHS)
    assert (await bands(private, date(2025, 6, 30), date(2025, 7, 1)))["coverage.members"] == 4
    assert await answer_rows(private) == await derived_rows(private)

    now[0] = noon(date(2025, 7, 2))  # two replicas roll at once: one does it
    results = await asyncio.gather(roll(private, now), roll(private, now))
    assert sorted(r is None for r in results) == [False, True]
    assert await answer_rows(private) == await derived_rows(private)
    assert await held(private) == answers.wanted_days(date(2025, 7, 2), MONTHS)


async def test_a_change_during_a_roll_counts_once(private: async_sessionmaker[AsyncSession]) -> None:
    """The consumer's change waits for the roll's lock and adds itself to the day the roll derived."""
    s = Stream(default_time=datetime(2025, 6, 1, 8, tzinfo=UTC))
    home = s.household(VILLAGE)
    children(s, home)
    await roll(private, [noon(date(2025, 6, 20))])
    await apply(private, s.events)
    s.events.clear()
    s.member(home, date(2024, 12, 1))
    async with private() as control, control.begin():  # the roll's derivation of a day
        await answers.lock_summaries(control)
        await answers.derive(control, [date(2025, 6, 21)])
        change = asyncio.create_task(apply(private, s.events))
        await asyncio.sleep(1)  # the change reaches the lock (or not yet: either way it must count once)
        assert not change.done()
    await change
    assert await answer_rows(private) == await derived_rows(private)
    assert (await bands(private, date(2025, 6, 21), date(2025, 6, 21)))["coverage.infant"] == 1  # the new one


async def test_a_day_not_held_falls_back_to_the_histogram(private: async_sessionmaker[AsyncSession]) -> None:
    s = Stream(default_time=datetime(2025, 6, 1, 8, tzinfo=UTC))
    children(s, s.household(VILLAGE))
    await roll(private, [noon(date(2025, 6, 15))])
    await apply(private, s.events)
    today = date(2025, 6, 16)  # not rolled yet
    scope = scope_on(today, today, "73", 2)
    async with private() as session:
        assert await reads._answers(session, scope) is None
        fallback = await reads.raw_values(session=session, scope=scope)
    assert fallback["73"]["coverage.school_age"] == 1
    await roll(private, [noon(today)])
    async with private() as session:
        assert await reads._answers(session, scope) is not None
        assert await reads.raw_values(session=session, scope=scope) == fallback


async def test_the_indicators_take_today_from_the_reporting_clock(
        reporting: httpx.AsyncClient, reporting_settings: ReportingSettings) -> None:
    """A running month's ages are taken on today by settings.clock (a child turning 12 months on 16 June)."""
    village = "7301011001"
    s = Stream(default_time=datetime(2025, 6, 1, 8, tzinfo=UTC))
    s.region("73", "Provinsi 73", "province", None)
    s.region("7301", "Kabupaten 7301", "regency", "73")
    s.member(s.household(village), date(2024, 6, 16))
    await publish(reporting_settings.kafka_bootstrap_servers, s.events)
    await until_consumed(reporting_settings.database_url, s.events)
    for day, band in ((date(2025, 6, 15), "coverage.infant"), (date(2025, 6, 16), "coverage.toddler")):
        with set_clock(reporting_settings, noon(day)):
            response = await reporting.get("/api/v1/indicators", headers=tokens.admin(),
                                           params={"region": village, "period": "2025-06"})
        assert response.status_code == 200, response.text
        [row] = response.json()["rows"]
        other = ({"coverage.infant", "coverage.toddler"} - {band}).pop()
        assert row[band] == 1 and not row.get(other), (day, row)


async def test_a_rebuild_derives_the_answers_of_every_held_day(private: async_sessionmaker[AsyncSession]) -> None:
    events = list(Generator(seed=7302, villages=VILLAGES).build().events)
    await roll(private, [noon(date(2025, 6, 15))])
    await apply(private, events)
    built = await answer_rows(private)
    assert len(built) > 100
    assert await rebuild.rebuild_summaries(sessionmaker=private) > 0
    assert await answer_rows(private) == built == await derived_rows(private)


async def test_the_roll_answers_command(stack: Stack, reporting_settings: ReportingSettings) -> None:
    dsn = await stack.migrated_database("reporting", "reporting_answers_command")
    env = {**os.environ, "DATABASE_URL": dsn, "ENVIRONMENT": "test", "LOG_LEVEL": "WARNING", "PYTHONPATH": str(ROOT),
           "KAFKA_BOOTSTRAP_SERVERS": reporting_settings.kafka_bootstrap_servers}
    outputs = []
    for _ in range(2):
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "services.reporting", "roll-answers", cwd=ROOT, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(process.communicate(), 120)
        assert process.returncode == 0, err.decode()
        outputs.append(out.decode())
    today = datetime.now(UTC).date()
    rolled = json.loads(outputs[0])
    assert rolled["today"] == today.isoformat() and rolled["dropped"] == []
    assert rolled["derived"] == [d.isoformat() for d in sorted(answers.wanted_days(today, 24))]
    assert outputs[1].startswith("Nothing to do")


async def test_the_background_roll_is_not_bound_by_the_requests_statement_timeout(stack: Stack) -> None:
    """A day's derivation sums every stock row, which grows with the data, so the serving app's roll runs on an
    engine of its own without DATABASE_COMMAND_TIMEOUT_SECONDS: here its lock waits 1.5 s for a transaction holding
    a summary table, past a 0.5 s limit, and today is held all the same (its next try would be an hour later)."""
    dsn = await stack.migrated_database("reporting", "reporting_answers_roll_timeout")
    settings = ReportingSettings(database_url=dsn, database_command_timeout_seconds=0.5,
                                 answer_roll_interval_seconds=3600)
    engine = create_engine(settings)  # the app's: the requests' statement timeout
    sessions = create_sessionmaker(engine)
    holder = await asyncpg.connect(dsn)
    job: asyncio.Task[None] | None = None
    try:
        holding = holder.transaction()
        await holding.start()
        await holder.execute("LOCK TABLE summary_stocks IN ROW SHARE MODE")  # conflicts with the roll's EXCLUSIVE
        job = asyncio.create_task(answers.answer_roll_loop(settings, sessions))
        await asyncio.sleep(1.5)
        await holding.rollback()
        today = datetime.now(UTC).date()
        for _ in range(200):
            if today in await held(sessions):
                break
            await asyncio.sleep(0.1)
        assert today in await held(sessions)
    finally:
        if job is not None:
            job.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await job
        await holder.close()
        await engine.dispose()
