"""Answer rows: the stocks already summed per age band on the reference days reports ask for (issue 13).

The stock rows (summary_stocks) keep each member's exact birth date, so any band on any day is exact, but a
national read sums every birth date of the country. For the held days, `summary_answers` keeps the sums: for each
level, region and key, what the stock rows with `month` up to the day's month give for the members born in a band
on that day (reads.BANDS, PostgreSQL's month arithmetic), for the (key, band) pairs the indicators use
(reads.AGED) and 'all' for every key. A read of a held day is one primary-key range of these rows.

Held days (`summary_answer_days`): the last day of each of the `answer_snapshot_months` closed months before
today (a snapshot: a past month reads fast too) and today by the reporting clock. The consumer adds every stock
change to the answers of each held day it counts on (`add`, in the transaction of the change); the daily roll
(`run_daily_roll`) derives a new day's answers from the stock rows, records it, and drops the days no longer
wanted (yesterday, unless it was a month's last day; snapshots older than the window). It takes the lock the
rebuild takes on the summary tables, so a consumer's change waits for it and counts exactly once: in the
derivation if it committed before, added by the consumer after (which reads the held days once its own stock
change holds the lock).
"""

from __future__ import annotations

import asyncio
import calendar
import logging
import zlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.reporting.settings import ReportingSettings
from services.reporting.summaries.counting import CountTable, add_counts
from services.reporting.summaries.reads import AGED, BANDS, band_sql
from services.reporting.tables import SUMMARIES
from shared.clock import Clock, today_by
from shared.db import create_engine, create_sessionmaker
from shared.settings import ServiceSettings

log = logging.getLogger(__name__)

_ROLL_LOCK = zlib.crc32(b"reporting-answer-roll")

#: The bands held per key: those the indicators read of an aged key, and 'all' for every key.
_AGED_BANDS: dict[str, tuple[str, ...]] = {
    key: ("all", *sorted({b for k, b in AGED if k == key} - {"all"})) for key, _ in AGED}
_ALL = ("all",)
_USED_BANDS = sorted({b for bands in _AGED_BANDS.values() for b in bands})


def bands_of(key: str) -> tuple[str, ...]:
    return _AGED_BANDS.get(key, _ALL)


def months_before(day: date, months: int) -> date:
    """`day - interval 'k months'` as PostgreSQL computes it: the same day `months` months earlier, clamped to
    that month's last day (31 March minus one month is 28 or 29 February)."""
    year, month0 = divmod(day.year * 12 + day.month - 1 - months, 12)
    return date(year, month0 + 1, min(day.day, calendar.monthrange(year, month0 + 1)[1]))


def band_bounds(on: date, band: str) -> tuple[date | None, date]:
    """The birth dates in `band` on `on`, as (after, up to): born after the first (None: no such bound), on or
    before the second (reads.band_sql's rule: born by `on` and `low` months before it, after `high + 1` months
    before it)."""
    low, high = BANDS[band]
    return (None if high is None else months_before(on, high + 1)), months_before(on, low)


def _within(born: date, bounds: tuple[date | None, date]) -> bool:
    after, up_to = bounds
    return born <= up_to and (after is None or born > after)


def in_band(born: date, on: date, band: str) -> bool:
    """Whether a member born on `born` is in `band` on `on`: reads.band_sql's rule, in Python."""
    return _within(born, band_bounds(on, band))


def month_end(month: date) -> date:
    return month.replace(day=calendar.monthrange(month.year, month.month)[1])


def wanted_days(today: date, snapshot_months: int) -> set[date]:
    """Today and the last day of each of the `snapshot_months` closed months before today's month."""
    days, first = {today}, today.replace(day=1)
    for _ in range(snapshot_months):
        first = (first - timedelta(days=1)).replace(day=1)
        days.add(month_end(first))
    return days


_HELD = sa.text("SELECT as_of FROM summary_answer_days ORDER BY as_of")

ANSWERS = CountTable("summary_answers", ("level", "as_of", "region", "key", "band"))


async def held_days(session: AsyncSession) -> list[date]:
    return list((await session.execute(_HELD)).scalars())


async def add(session: AsyncSession, stocks: Counter[tuple[int, str, date, str, date]]) -> None:
    """Adds stock changes ((level, region, month, key, born) -> n) to the answers of every held day on or after
    their month whose band holds the birth date on that day: one upsert, and a delete of the rows it brought to
    zero. Called after the changes' own upsert, which waits for a roll's lock: the held days read here are then
    those the roll committed."""
    if not stocks or not (days := await held_days(session)):
        return
    bounds = {(day, band): band_bounds(day, band) for day in days for band in _USED_BANDS}
    # The (day, band) answers a stock row counts in: the same at every level, so worked out once per row.
    targets: dict[tuple[date, str, date], list[tuple[date, str]]] = {}
    counts: Counter[tuple[int, date, str, str, str]] = Counter()
    for (level, region, month, key, born), n in stocks.items():
        if not n:
            continue
        if (where := targets.get((month, key, born))) is None:
            where = targets[(month, key, born)] = [
                (day, band) for day in days if month <= day for band in bands_of(key)
                if _within(born, bounds[(day, band)])]
        for day, band in where:
            counts[(level, day, region, key, band)] += n
    await add_counts(session, ANSWERS, counts)


_PAIRS = sorted(f"{key}|{band}" for key, bands in _AGED_BANDS.items() for band in bands if band != "all")

# One pass over the stock rows up to the day's month: the band sums side by side, then one row per band held.
_DERIVE = sa.text(f"""
INSERT INTO summary_answers (level, as_of, region, key, band, n)
SELECT g.level, CAST(:as_of AS date), g.region, g.key, b.band, b.n
FROM (SELECT level, region, key,
             {", ".join(f"sum(n) FILTER (WHERE {band_sql(*BANDS[b])}) AS band_{b}" for b in _USED_BANDS)}
      FROM summary_stocks WHERE month <= CAST(:as_of AS date) GROUP BY level, region, key) g
CROSS JOIN LATERAL (VALUES {", ".join(f"('{b}', g.band_{b})" for b in _USED_BANDS)}) AS b (band, n)
WHERE b.n <> 0 AND (b.band = 'all' OR g.key || '|' || b.band = ANY(CAST(:pairs AS text[])))""")

_FORGET = sa.text("DELETE FROM summary_answers WHERE as_of = ANY(CAST(:days AS date[]))")
_HOLD = sa.text("""
INSERT INTO summary_answer_days (as_of, derived_at) SELECT unnest(CAST(:days AS date[])), now()
ON CONFLICT (as_of) DO UPDATE SET derived_at = excluded.derived_at""")
_UNHOLD = sa.text("DELETE FROM summary_answer_days WHERE as_of = ANY(CAST(:days AS date[]))")


async def lock_summaries(session: AsyncSession) -> None:
    """The rebuild's lock: the consumer's writes wait, reports read on."""
    await session.execute(sa.text(f"LOCK TABLE {', '.join(SUMMARIES)} IN EXCLUSIVE MODE"))


async def derive(session: AsyncSession, days: Iterable[date]) -> None:
    """The answers of these days, derived again from the stock rows (whatever was held for them is replaced), and
    the days recorded as held. The caller holds the summaries' lock."""
    days = sorted(set(days))
    if not days:
        return
    await session.execute(_FORGET, {"days": days})
    for day in days:
        await session.execute(_DERIVE, {"as_of": day, "pairs": _PAIRS})
    await session.execute(_HOLD, {"days": days})


async def derive_held(session: AsyncSession) -> None:
    """The answers of every held day from the stock rows (the end of a rebuild, in its transaction and lock)."""
    await derive(session, await held_days(session))


@dataclass
class RollResult:
    """What a roll did: the day it rolled to, the days it derived and those it dropped."""

    today: date
    derived: list[date] = field(default_factory=list)
    dropped: list[date] = field(default_factory=list)


async def run_daily_roll(sessionmaker: async_sessionmaker[AsyncSession], *, clock: Clock,
                         snapshot_months: int) -> RollResult | None:
    """Today's roll, unless the days are held already or another replica is rolling (then None).

    A control transaction holds the advisory lock (once across replicas); each day is derived in a transaction
    of its own (today first), so the consumer waits for one derivation at a time, not for a first roll's whole
    window; the days no longer wanted are dropped in the last one. A crash leaves the days derived so far held
    and the next roll derives the rest. Days missed while nothing ran need nothing of their own: the month ends
    among them are derived as missing snapshots."""
    today = today_by(clock)
    async with sessionmaker() as control, control.begin():
        if not await control.scalar(sa.select(sa.func.pg_try_advisory_xact_lock(_ROLL_LOCK))):
            return None
        held, wanted = set(await held_days(control)), wanted_days(today, snapshot_months)
        result = RollResult(today, sorted(wanted - held), sorted(held - wanted))
        for day in sorted(result.derived, reverse=True):
            async with sessionmaker() as session, session.begin():
                await lock_summaries(session)
                await derive(session, [day])
        if result.dropped:
            async with sessionmaker() as session, session.begin():
                await lock_summaries(session)
                await session.execute(_FORGET, {"days": result.dropped})
                await session.execute(_UNHOLD, {"days": result.dropped})
    return result if result.derived or result.dropped else None


async def answer_roll_loop(settings: ServiceSettings, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """The background job: at start-up (catching up) and every interval, the roll if the day changed; errors are
    logged and retried at the next interval."""
    assert isinstance(settings, ReportingSettings)
    if not settings.answer_roll_enabled:
        return
    # Its own engine, without the requests' statement timeout: a day's derivation sums every stock row, which grows
    # with the data (the app's sessionmaker is not used).
    engine = create_engine(settings, unbounded_statements=True)
    try:
        await _roll_every_interval(settings, create_sessionmaker(engine))
    finally:
        await engine.dispose()


async def _roll_every_interval(settings: ReportingSettings, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    while True:
        try:
            result = await run_daily_roll(sessionmaker, clock=settings.clock,
                                          snapshot_months=settings.answer_snapshot_months)
            if result is not None:
                log.info("answer roll", extra={"today": result.today.isoformat(),
                                               "derived": [d.isoformat() for d in result.derived],
                                               "dropped": [d.isoformat() for d in result.dropped]})
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("answer roll failed; retried at the next interval")
        await asyncio.sleep(settings.answer_roll_interval_seconds)
