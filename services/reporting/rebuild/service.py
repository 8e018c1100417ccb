"""Rebuild: empty the projections and replay every topic from the beginning through the same handlers.

The handlers are order-tolerant upserts and the replay records each event in the inbox of the service's own
consumer group, so the running consumer (if any) skips what the replay applied and applies what came after; the
result equals a projection built event by event. The committed offsets of the group are left alone. It ends with
the daily roll of the answer rows, so a new database has the answers of its held days at once (on one that held
days already, the replayed handlers kept them and the roll finds nothing to do).
"""

from __future__ import annotations

import logging
import time

import sqlalchemy as sa
from aiokafka import TopicPartition
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.reporting.consumers import GROUP, all_handlers
from services.reporting.settings import ReportingSettings
from services.reporting.summaries.answers import run_daily_roll
from services.reporting.tables import PROJECTIONS
from shared.consumer import BATCH_MAX_RECORDS, Batched, Handler, apply_once
from shared.db import create_engine, create_sessionmaker
from shared.events.envelope import CloudEvent
from shared.events.topics import ALL_TOPICS
from shared.kafka import new_consumer
from shared.settings import ServiceSettings
from shared.tables import inbox

log = logging.getLogger(__name__)


async def reset(*, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """Empties every projection and forgets which events the group has applied, in one transaction."""
    async with sessionmaker() as session, session.begin():
        await session.execute(sa.text(f"TRUNCATE {', '.join(PROJECTIONS)}"))
        await session.execute(sa.delete(inbox).where(inbox.c.consumer_group == GROUP))


async def apply_event(*, sessionmaker: async_sessionmaker[AsyncSession], handlers: dict[str, Handler | Batched],
                      event: CloudEvent) -> bool:
    """Applies one event once, as the consumer does: inbox row and projection change in one transaction."""
    return event.type in handlers and await apply_once(sessionmaker, GROUP, handlers, [event]) == 1


async def _apply_fetched(sessionmaker: async_sessionmaker[AsyncSession], handlers: dict[str, Handler | Batched],
                         events: list[CloudEvent]) -> int:
    """A fetched batch in one transaction, as the consumer does; one by one if the batch fails as a whole."""
    known = [event for event in events if event.type in handlers]
    try:
        return await apply_once(sessionmaker, GROUP, handlers, known)
    except Exception:
        return sum([await apply_event(sessionmaker=sessionmaker, handlers=handlers, event=event) for event in known])


async def replay(*, settings: ServiceSettings, sessionmaker: async_sessionmaker[AsyncSession],
                 timeout_seconds: float = 600) -> int:
    """Applies every event on the topics up to their current end; returns how many were applied."""
    handlers = all_handlers()
    consumer = new_consumer(settings, group_id=None, client_id="reporting-rebuild")  # type: ignore[arg-type]
    await consumer.start()
    applied = 0
    try:
        existing = await consumer.topics()
        partitions = [TopicPartition(topic, p) for topic in ALL_TOPICS if topic in existing
                      for p in sorted(consumer.partitions_for_topic(topic) or ())]
        if not partitions:
            return 0
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        deadline = time.monotonic() + timeout_seconds
        while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
            if time.monotonic() > deadline:
                raise TimeoutError("the replay did not reach the end of the topics in time")
            batches = await consumer.getmany(timeout_ms=200, max_records=BATCH_MAX_RECORDS)
            for tp, records in batches.items():
                events = []
                for record in records:
                    if record.offset >= ends[tp]:
                        continue
                    try:
                        events.append(CloudEvent.from_bytes(record.value))
                    except (ValueError, ValidationError):
                        continue  # the live consumer dead-lettered it; nothing to project
                applied += await _apply_fetched(sessionmaker, handlers, events)
    finally:
        await consumer.stop()
    return applied


async def rebuild(settings: ServiceSettings) -> int:
    """Drops the projections and replays the topics from the beginning; returns the events applied."""
    engine = create_engine(settings, unbounded_statements=True)  # offline: its statements grow with the data
    try:
        sessionmaker = create_sessionmaker(engine)
        await reset(sessionmaker=sessionmaker)
        applied = await replay(settings=settings, sessionmaker=sessionmaker)
        if isinstance(settings, ReportingSettings) and settings.answer_roll_enabled:
            await run_daily_roll(sessionmaker, clock=settings.clock, snapshot_months=settings.answer_snapshot_months)
    finally:
        await engine.dispose()
    log.info("projections rebuilt", extra={"events": applied})
    return applied
