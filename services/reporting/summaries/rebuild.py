"""Rebuild the summaries from the projection tables (`python -m services.reporting rebuild-summaries`).

The summaries are the sum of every aggregate's contribution (contributions.py, the same definition the
consumer applies), so a rebuild empties them and adds the contributions of all households, measured children,
needs, referrals and sessions, a chunk of ids at a time, in one transaction: a report never sees them half
built, and the consumer, whose writes wait for the rebuild's lock, adds its changes to the rebuilt rows. Only
the projection tables are read; nothing comes from the topics.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.reporting.summaries import answers, store
from services.reporting.summaries.contributions import Contribution
from services.reporting.tables import SUMMARIES
from shared.db import create_engine, create_sessionmaker
from shared.settings import ServiceSettings

log = logging.getLogger(__name__)

#: Aggregates read per chunk (each chunk: a handful of `= ANY(ids)` statements and one upsert per table).
CHUNK = 2000

_SOURCES = {"households": "SELECT id FROM households", "children": "SELECT DISTINCT member_id FROM measurements",
            "needs": "SELECT id FROM needs", "referrals": "SELECT id FROM referrals",
            "sessions": "SELECT id FROM sessions"}


async def rebuild_in(session: AsyncSession) -> int:
    """Empties the summaries and adds every aggregate's contribution, in the caller's transaction; returns how
    many aggregates were counted."""
    await session.execute(sa.text(f"LOCK TABLE {', '.join(SUMMARIES)} IN EXCLUSIVE MODE"))
    await session.execute(sa.text(f"TRUNCATE {', '.join(SUMMARIES)}"))
    counted = 0
    for kind, sql in _SOURCES.items():
        ids = list((await session.execute(sa.text(f"{sql} ORDER BY 1"))).scalars())
        for start in range(0, len(ids), CHUNK):
            chunk = set(ids[start:start + CHUNK])
            total = Contribution()
            total += await store.contributions(session, store.Affected(**{kind: chunk}))
            await store.add(session, total)
        counted += len(ids)
    await answers.derive_held(session)
    return counted


async def rebuild_summaries(*, sessionmaker: async_sessionmaker[AsyncSession]) -> int:
    async with sessionmaker() as session, session.begin():
        return await rebuild_in(session)


async def rebuild(settings: ServiceSettings) -> int:
    engine = create_engine(settings)
    try:
        counted = await rebuild_summaries(sessionmaker=create_sessionmaker(engine))
    finally:
        await engine.dispose()
    log.info("summaries rebuilt from the projections", extra={"aggregates": counted})
    return counted
