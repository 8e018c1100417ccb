"""Rebuild the summaries from the projection tables (`python -m services.reporting rebuild-summaries`).

The summaries are the sum of every aggregate's contribution (contributions.py, the same definition the
consumer applies), so a rebuild empties them and adds the contributions of all households, measured children,
needs, referrals and sessions, in one transaction: a report never sees them half built, and the consumer, whose
writes wait for the rebuild's lock, adds its changes to the rebuilt rows. Only the projection tables are read;
nothing comes from the topics.

The aggregates are read a chunk of ids at a time (keyset pages, so neither the ids nor the counts are held in
memory), and each chunk's village counts are copied (COPY) into temporary staging tables (the duration buckets
into one of their own). The summary rows of every level are then made by one `INSERT ... SELECT ... GROUP BY` per
table from the staging rows, into the emptied tables (their primary keys built afterwards; each histogram's
buckets grouped into its row's arrays): PostgreSQL spreads the villages over their regions and adds the chunks up,
which per-chunk upserts did row by row before (README "Reporting: rebuild" has the figures).
Reads of the summaries wait for the rebuild (TRUNCATE's lock) rather than see them half built.
"""

from __future__ import annotations

import logging
import uuid

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.reporting.summaries import answers, store
from services.reporting.summaries.contributions import AGENCY_KEY, LEVELS, Contribution, bucket_key
from services.reporting.tables import SUMMARIES, metadata
from shared.db import create_engine, create_sessionmaker, driver_connection
from shared.settings import ServiceSettings

log = logging.getLogger(__name__)

#: Aggregates read per chunk (each chunk: a handful of `= ANY(ids)` statements and one COPY per staging table).
CHUNK = 10_000

#: Each kind's ids in order, one keyset page after `:after` at a time.
_PAGES = {"households": "SELECT id FROM households WHERE id > :after ORDER BY id LIMIT :n",
          "children": "SELECT DISTINCT member_id FROM measurements WHERE member_id > :after ORDER BY 1 LIMIT :n",
          "needs": "SELECT id FROM needs WHERE id > :after ORDER BY id LIMIT :n",
          "referrals": "SELECT id FROM referrals WHERE id > :after ORDER BY id LIMIT :n",
          "sessions": "SELECT id FROM sessions WHERE id > :after ORDER BY id LIMIT :n"}

# The village counts of every chunk, as contributions.py keys them; dropped with the transaction at the latest.
_STAGING = {"rebuild_stocks": ("village", "month", "key", "born"),
            "rebuild_flows": ("village", "span", "month", "key"),
            "rebuild_histograms": ("village", "span", "month", "key", "bucket")}
_CREATE_STAGING = ["CREATE TEMPORARY TABLE rebuild_stocks (village text NOT NULL, month date NOT NULL, "
                   "key text NOT NULL, born date NOT NULL, n bigint NOT NULL) ON COMMIT DROP",
                   "CREATE TEMPORARY TABLE rebuild_flows (village text NOT NULL, span text NOT NULL, "
                   "month date NOT NULL, key text NOT NULL, n bigint NOT NULL) ON COMMIT DROP",
                   "CREATE TEMPORARY TABLE rebuild_histograms (village text NOT NULL, span text NOT NULL, "
                   "month date NOT NULL, key text NOT NULL, bucket int NOT NULL, n bigint NOT NULL) ON COMMIT DROP"]

# Each village row counted at every level (contributions.LEVELS: the region is the village code's first `level`
# characters) and summed over the chunks; a sum of zero is no row, as the consumer leaves none. The rows are written
# in primary-key order, so the rows of one read (a level, period and region range) lie on a few adjacent pages
# instead of one page each (at 1M members a national read touched 35,000 pages for 46,000 rows).
_FILL = ["""
INSERT INTO summary_stocks (level, region, month, key, born, n)
SELECT l.level, left(s.village, l.level), s.month, s.key, s.born, sum(s.n)
FROM rebuild_stocks s CROSS JOIN unnest(CAST(:levels AS int[])) AS l (level)
GROUP BY 1, 2, 3, 4, 5 HAVING sum(s.n) <> 0 ORDER BY 1, 2, 3, 4, 5""", *(f"""
INSERT INTO {table} (level, span, month, region, key, n)
SELECT l.level, f.span, f.month, left(f.village, l.level), f.key, sum(f.n)
FROM rebuild_flows f CROSS JOIN unnest(CAST(:levels AS int[])) AS l (level)
WHERE {"" if agency else "NOT "}f.key LIKE '{AGENCY_KEY}%'
GROUP BY 1, 2, 3, 4, 5 HAVING sum(f.n) <> 0 ORDER BY 1, 2, 3, 4, 5""" for table, agency in (
    ("summary_flows", False), ("summary_agency_flows", True))), """
INSERT INTO summary_histograms (level, span, month, region, key, buckets, counts)
SELECT level, span, month, region, key, array_agg(bucket ORDER BY bucket), array_agg(n ORDER BY bucket) FROM (
    SELECT l.level, h.span, h.month, left(h.village, l.level) AS region, h.key, h.bucket, CAST(sum(h.n) AS bigint) AS n
    FROM rebuild_histograms h CROSS JOIN unnest(CAST(:levels AS int[])) AS l (level)
    GROUP BY 1, 2, 3, 4, 5, 6 HAVING sum(h.n) <> 0) AS b
GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5"""]

# The emptied tables are filled without their primary keys, each then built once from a sort of the rows:
# adding a million rows to the index one by one took four times as long as the rows themselves.
_KEYS = [metadata.tables[name].primary_key
         for name in ("summary_stocks", "summary_flows", "summary_agency_flows", "summary_histograms")]


async def _stage(session: AsyncSession, counts: Contribution) -> None:
    """Copies a chunk's village counts into the staging tables, through the session's own connection (so inside
    its transaction)."""
    driver = await driver_connection(session)
    flows: list[tuple[object, ...]] = []
    histograms: list[tuple[object, ...]] = []
    for (village, span, month, key), n in counts.flows.items():
        if n:
            bucket = bucket_key(key)
            if bucket is None:
                flows.append((village, span, month, key, n))
            else:
                histograms.append((village, span, month, *bucket, n))
    stocks = [(*key, n) for key, n in counts.stocks.items() if n]
    for table, records in (("rebuild_stocks", stocks), ("rebuild_flows", flows), ("rebuild_histograms", histograms)):
        if records:
            await driver.copy_records_to_table(table, records=records, columns=[*_STAGING[table], "n"])


async def rebuild_in(session: AsyncSession, *, chunk: int = CHUNK) -> int:
    """Empties the summaries and adds every aggregate's contribution, in the caller's transaction; returns how
    many aggregates were counted."""
    await session.execute(sa.text(f"LOCK TABLE {', '.join(SUMMARIES)} IN EXCLUSIVE MODE"))
    await session.execute(sa.text(f"TRUNCATE {', '.join(SUMMARIES)}"))
    for key in _KEYS:
        await session.execute(sa.schema.DropConstraint(key))
    for statement in _CREATE_STAGING:
        await session.execute(sa.text(statement))
    counted = 0
    for kind, page in _PAGES.items():
        after = uuid.UUID(int=0)
        while ids := list((await session.execute(sa.text(page), {"after": after, "n": chunk})).scalars()):
            await _stage(session, await store.contributions(session, store.Affected(**{kind: set(ids)})))
            counted += len(ids)
            after = ids[-1]
    for statement in _FILL:
        await session.execute(sa.text(statement), {"levels": list(LEVELS)})
    for key in _KEYS:
        await session.execute(sa.schema.AddConstraint(key))
    await session.execute(sa.text(f"DROP TABLE {', '.join(_STAGING)}"))
    await answers.derive_held(session)  # the answer rows of every held day, from the stocks just made
    return counted


async def rebuild_summaries(*, sessionmaker: async_sessionmaker[AsyncSession], chunk: int = CHUNK) -> int:
    async with sessionmaker() as session, session.begin():
        return await rebuild_in(session, chunk=chunk)


async def rebuild(settings: ServiceSettings) -> int:
    # No client-side statement timeout: the rebuild's statements grow with the data (the INSERT ... SELECT of 1M
    # members ran past the requests' 60 s on a loaded two-core machine and the command failed at its end).
    engine = create_engine(settings, unbounded_statements=True)
    try:
        counted = await rebuild_summaries(sessionmaker=create_sessionmaker(engine))
    finally:
        await engine.dispose()
    log.info("summaries rebuilt from the projections", extra={"aggregates": counted})
    return counted
