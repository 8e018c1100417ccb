"""The summaries the consumer keeps equal a recomputation from the projection tables, and so does a rebuild.

Random event streams (seeded) in province 33 go through the real broker and consumer, shuffled, some events
twice and a fifth of them held back and published after the rest were consumed (late events for months
already reported); every indicator at every level, for every month, quarter and the year, read from the
summaries, equals the request-time statement over the projections (indicators/repository.py, the reference).
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from services.reporting.consumers import GROUP, all_handlers
from services.reporting.indicators import repository
from services.reporting.indicators.periods import parse_period
from services.reporting.indicators.repository import Scope, Values
from services.reporting.settings import ReportingSettings
from services.reporting.summaries import answers, reads
from services.reporting.summaries.contributions import bucket_key, within_stated_error
from services.reporting.tables import SUMMARIES
from services.reporting.tests.factories import Stream, publish, until_consumed
from services.reporting.tests.reference import PERCENTILES
from services.reporting.tests.summary_streams import VILLAGES, Generator
from shared.clock import today_by
from shared.consumer import apply_once
from shared.db import sqlalchemy_url
from shared.events.household import ProfileDecisions
from shared.events.topics import SpmField
from tests.support.clock import set_clock
from tests.support.database import sessions_of
from tests.support.waiting import eventually

ROOT = Path(__file__).resolve().parents[3]
PERIODS = ["2025-01", "2025-02", "2025-03", "2025-04", "2025-05", "2025-06", "2025-Q1", "2025-Q2", "2025"]
#: (prefix, group length): the province, broken down to regencies, districts and villages, one village, and the
#: nation by province (of which only province 33 is this test's).
SCOPES = [("33", 2), ("33", 4), ("33", 6), ("3301", 10), ("3301011001", 10), ("", 2)]
FIELD_SETS = [tuple(f.value for f in SpmField), ("kesehatan", "sosial")]

# The reference takes each child's latest measurement of the period among all households (then counts it where
# it was taken), where the request-time statement took the latest within the requested region: a child measured
# in two villages in one period counted in both. The summaries count a child once (README: "Summary tables").
_LATEST = """latest AS (
    SELECT DISTINCT ON (x.member_id) x.member_id, hh.region, x.haz_class, x.waz_class, x.whz_class, x.kms_signal
    FROM measurements x JOIN hh ON hh.id = x.household_id
    WHERE x.measured_on >= CAST(:start_date AS date) AND x.measured_on < CAST(:end_date AS date)
      AND x.age_days < 1827 AND NOT EXISTS (SELECT 1 FROM member_merges g WHERE g.merged_id = x.member_id)
    ORDER BY x.member_id, x.measured_on DESC, x.id),"""
_LATEST_ANYWHERE = """latest AS (SELECT * FROM (
    SELECT DISTINCT ON (x.member_id) x.member_id, left(h.village_code, :n) AS region, h.village_code,
           x.haz_class, x.waz_class, x.whz_class, x.kms_signal
    FROM measurements x JOIN households h ON h.id = x.household_id AND h.status = 'active'
         AND h.first_seen_at < CAST(:end_ts AS timestamptz)
    WHERE x.measured_on >= CAST(:start_date AS date) AND x.measured_on < CAST(:end_date AS date)
      AND x.age_days < 1827 AND NOT EXISTS (SELECT 1 FROM member_merges g WHERE g.merged_id = x.member_id)
    ORDER BY x.member_id, x.measured_on DESC, x.id) l WHERE l.village_code LIKE :like),"""
assert _LATEST in repository._STOCKS
_REFERENCE = [(repository._STOCKS.replace(_LATEST, _LATEST_ANYWHERE), repository._STOCK_KEYS),
              (repository._SESSIONS, repository._SESSIONS_KEYS), (repository._NEEDS, repository._NEEDS_KEYS),
              (repository._REFERRALS, repository._REFERRAL_KEYS)]


async def reference(session: AsyncSession, scope: Scope) -> dict[str, Values]:
    out: dict[str, Values] = defaultdict(dict)
    for sql, keys in _REFERENCE:
        await repository._grouped(session, sql, scope, keys, out)
    return dict(out)


def shown(found: dict[str, Values], prefix: str) -> dict[str, Values]:
    """The non-zero values of the regions in this test's province."""
    out: dict[str, Values] = {}
    for region, values in found.items():
        kept: Values = {k: v for k, v in values.items() if v}
        if region.startswith("33") and kept:
            out[region] = kept
    return out


def assert_equal(found: dict[str, Values], expected: dict[str, Values], where: Any) -> None:
    assert sorted(found) == sorted(expected), where
    for region, values in expected.items():
        exact = {k: v for k, v in values.items() if k not in PERCENTILES}
        assert {k: v for k, v in found[region].items() if k not in PERCENTILES} == exact, (where, region)
        for key in PERCENTILES & (set(values) | set(found[region])):
            got, want = found[region].get(key), values.get(key)
            assert got is not None and want is not None and within_stated_error(got, want), (
                where, region, key, got, want)


@pytest.fixture(scope="module")
async def sessions(reporting_settings: ReportingSettings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_async_engine(sqlalchemy_url(reporting_settings.database_url))
    yield async_sessionmaker(engine, expire_on_commit=False)
    await engine.dispose()


async def hold_answers(sessions: async_sessionmaker[AsyncSession], settings: ReportingSettings) -> None:
    """Today's roll by the clock (the answer rows of today and the month ends, summaries/answers.py), also if the
    app's background roll was under way."""
    async def rolled() -> bool:
        await answers.run_daily_roll(sessions, clock=settings.clock, snapshot_months=settings.answer_snapshot_months)
        async with sessions() as session:
            return set(await answers.held_days(session)) == answers.wanted_days(
                today_by(settings.clock), settings.answer_snapshot_months)

    await eventually(rolled, "the answers of today's roll", 60)


async def assert_summaries_equal_reference(sessions: async_sessionmaker[AsyncSession], today: date) -> int:
    """Every indicator read from the summaries equals the reference; the stocks of every period come from the
    answer rows of a held day (June, the quarter and the year with the stock rows dated after today's month)."""
    compared = answered = 0
    for period in PERIODS:
        for prefix, length in SCOPES:
            for fields in FIELD_SETS:
                scope = Scope(prefix, length, parse_period(period, today), fields)
                async with sessions() as session, session.begin():
                    found = shown(await reads.raw_values(session=session, scope=scope), prefix)
                    expected = shown(await reference(session, scope), prefix)
                    answered += await reads._answers(session, scope) is not None
                assert_equal(found, expected, (period, prefix, length, fields))
                compared += sum(len(v) for v in expected.values())
    assert answered == len(PERIODS) * len(SCOPES) * len(FIELD_SETS)
    return compared


async def summary_rows(database_url: str) -> dict[str, list[tuple[str, ...]]]:
    conn = await asyncpg.connect(database_url)
    try:
        return {table: sorted(tuple(map(str, r)) for r in await conn.fetch(
            f"SELECT * FROM {table} WHERE region LIKE '33%'")) for table in SUMMARIES}
    finally:
        await conn.close()


#: The clock of the differential test: the streams' fifth month is running (its stocks on today's answers), the
#: months before it closed (on their snapshots), June yet to come.
TODAY = date(2025, 5, 15)


async def test_consumer_summaries_equal_the_projections_and_a_rebuild(
        reporting: httpx.AsyncClient, reporting_settings: ReportingSettings,
        sessions: async_sessionmaker[AsyncSession]) -> None:
    with set_clock(reporting_settings, datetime(TODAY.year, TODAY.month, TODAY.day, 12, tzinfo=UTC)):
        await hold_answers(sessions, reporting_settings)
        await consumer_summaries_equal_the_projections_and_a_rebuild(reporting_settings, sessions)


async def consumer_summaries_equal_the_projections_and_a_rebuild(
        reporting_settings: ReportingSettings, sessions: async_sessionmaker[AsyncSession]) -> None:
    rnd = random.Random(1313)
    events = list(Generator(seed=1313).build().events)
    rnd.shuffle(events)
    held_back = len(events) // 5
    first, late = events[:-held_back], events[-held_back:]
    first += rnd.sample(first, len(first) // 6)  # redeliveries
    await publish(reporting_settings.kafka_bootstrap_servers, first)
    await until_consumed(reporting_settings.database_url, first, timeout=180)
    assert await assert_summaries_equal_reference(sessions, TODAY) > 500

    late += rnd.sample(events, 40)  # late events for months already reported, and more redeliveries
    await publish(reporting_settings.kafka_bootstrap_servers, late)
    await until_consumed(reporting_settings.database_url, late, timeout=180)
    assert await assert_summaries_equal_reference(sessions, TODAY) > 500

    # The rebuild from the projections gives the rows the consumer built (no row left at zero either).
    built = await summary_rows(reporting_settings.database_url)
    assert not [row for rows in built.values() for row in rows if row[-1] == "0"]
    assert len(built["summary_stocks"]) > 100 and len(built["summary_flows"]) > 100
    assert built["summary_agency_flows"] and not [r for r in built["summary_flows"] if r[4].startswith("a|")]
    assert built["summary_histograms"] and not [r for r in built["summary_histograms"] if r[-1] == "[]"]
    assert not [r for r in built["summary_flows"] if bucket_key(r[4])]  # the buckets are in their histograms' rows
    assert len(built["summary_answers"]) > 100
    env = {**os.environ, "DATABASE_URL": reporting_settings.database_url, "ENVIRONMENT": "test",
           "LOG_LEVEL": "WARNING", "PYTHONPATH": str(ROOT),
           "KAFKA_BOOTSTRAP_SERVERS": reporting_settings.kafka_bootstrap_servers}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.reporting", "rebuild-summaries", cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 300)
    assert process.returncode == 0, err.decode()
    assert "summaries rebuilt from the projections of" in out.decode()
    assert await summary_rows(reporting_settings.database_url) == built


async def test_the_household_services_verdicts_count_not_the_profile_values(reporting_session: AsyncSession) -> None:
    """RTLH, safe water and the low deciles come from the verdicts published with the profile (the household
    service's rules and configuration); the profile's own values only count where no verdict came with it.
    (Applied in the test's rolled-back transaction; the village is none of the stream generator's.)"""
    village, observed = "3303021001", date(2025, 3, 10)
    assert village not in VILLAGES
    s = Stream(default_time=datetime(2025, 3, 10, tzinfo=UTC))
    fit_house = {"household": {"floor_area_m2": 90, "occupants": 2, "floor": "ceramic-or-cement"}}
    earth_floor = {"household": {"floor_area_m2": 90, "occupants": 2, "floor": "earth"}}
    homes = [s.household(village) for _ in range(4)]
    s.profile(homes[0], "perumahan-rakyat", fit_house, observed_on=observed, decided=ProfileDecisions(rtlh=True))
    s.profile(homes[1], "perumahan-rakyat", earth_floor, observed_on=observed, decided=ProfileDecisions(rtlh=False))
    s.profile(homes[2], "perumahan-rakyat", earth_floor, observed_on=observed)  # no verdict: the values count
    s.profile(homes[0], "pekerjaan-umum", {"household": {"drinking_water_source": "piped"}}, observed_on=observed,
              decided=ProfileDecisions(safe_water=False))
    s.profile(homes[1], "pekerjaan-umum", {"household": {"drinking_water_source": "other"}}, observed_on=observed,
              decided=ProfileDecisions(safe_water=True))
    s.profile(homes[0], "sosial", {"household": {"dtsen_decile": 7, "aid_received": ["pkh"]}}, observed_on=observed,
              decided=ProfileDecisions(low_decile=True))
    s.profile(homes[1], "sosial", {"household": {"dtsen_decile": 2}}, observed_on=observed,
              decided=ProfileDecisions(low_decile=False))
    assert await apply_once(sessions_of(reporting_session), GROUP, all_handlers(),
                            [e for _, e in s.events]) == len(s.events)
    found = await reads.raw_values(session=reporting_session, scope=Scope(village, 10, parse_period("2025-03"),
                                                                          tuple(f.value for f in SpmField)))
    values = found[village]
    assert (values["perumahan-rakyat.households_profiled"], values["perumahan-rakyat.rtlh"]) == (3, 2)
    assert (values["pekerjaan-umum.households_profiled"], values["pekerjaan-umum.safe_water"]) == (2, 1)
    assert (values["sosial.decile_1_4"], values["sosial.decile_1_4_with_aid"]) == (1, 1)
