"""The one consumer runner: inbox dedup in the handler's transaction, commit after, bounded retries, DLQ.

The records of one fetch (all its partitions) are applied in one database transaction that first records their
event ids in the inbox; a redelivered event finds its id there and changes nothing. If anything in the batch
fails, the transaction rolls back and the batch is handled again one record per transaction, so one bad record
costs its neighbours nothing. Offsets are committed only after the transaction commits, and without holding up
the next fetch: the commit of one round runs while the next round is fetched and applied (one commit in flight at
a time; a crash before it lands redelivers what the inbox then skips). A record that is not a
valid event, or whose handler keeps failing for reasons other than an unreachable database, goes to
`posyandu.dlq.<group>` with the error (and into the service's `dead_letters` table, where the admin API and CLI
list, replay and discard it: shared/dead_letters.py), and the runner moves on. Broker errors (a rebalance,
UNKNOWN_MEMBER_ID from the embedded broker) make it rejoin.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import cast

import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from pydantic import ValidationError
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.errors import database_unavailable
from shared.events.envelope import CloudEvent
from shared.events.topics import dead_letter_topic
from shared.kafka import new_consumer, new_producer
from shared.observability import CONSUMER_LAG, CONSUMER_RECORDS, event_id_var
from shared.settings import ServiceSettings
from shared.tables import dead_letters

log = logging.getLogger(__name__)

Handler = Callable[[AsyncSession, CloudEvent], Awaitable[None]]


@dataclass(frozen=True)
class Batched:
    """A handler that takes all the claimed events of its type in a batch at once (e.g. one executemany).

    Only for order-tolerant handlers (upserts where the newest version wins): within a batch, the batched types
    are applied after the per-event handlers, each type in one call, its events in delivery order.
    """

    apply: Callable[[AsyncSession, list[CloudEvent]], Awaitable[None]]


#: How long an offset commit may take before the runner gives up on this consumer and rejoins.
COMMIT_TIMEOUT_SECONDS = 15.0

#: The most records one fetch hands over, all applied in one transaction when none of them fails.
BATCH_MAX_RECORDS = 500


class ConsumerStuck(Exception):
    """The consumer cannot make progress (e.g. its partitions vanished with a restarted broker): rejoin."""


class PermanentError(Exception):
    """A handler's verdict that retrying cannot help: the record goes straight to the dead-letter topic."""


#: The inbox claim of a batch: one statement of the same text for any batch size (its plan is cached), the ids
#: and types as two arrays. An id twice in one batch is inserted once.
_CLAIM = sa.text("""
INSERT INTO inbox (consumer_group, event_id, event_type)
SELECT DISTINCT ON (event_id) CAST(:group AS text), event_id, event_type
FROM unnest(CAST(:ids AS uuid[]), CAST(:types AS text[])) AS claimed (event_id, event_type)
ON CONFLICT DO NOTHING RETURNING event_id""")


async def apply_once(sessionmaker: async_sessionmaker[AsyncSession], group_id: str,
                     handlers: Mapping[str, Handler | Batched], events: list[CloudEvent]) -> int:
    """Applies the events (each of a type in `handlers`) in one transaction, each at most once for the group.
    Returns how many were applied; on any error the transaction rolls back and nothing is."""
    if not events:
        return 0
    async with sessionmaker() as session, session.begin():
        return await apply_in(session, group_id, handlers, events)


async def apply_in(session: AsyncSession, group_id: str, handlers: Mapping[str, Handler | Batched],
                   events: list[CloudEvent]) -> int:
    """Applies the events in the caller's transaction, each at most once for the group: one inbox insert claims
    their ids, and only the claimed ones reach their handlers. Returns how many were applied. A replay of a
    dead letter (shared/dead_letters.py) goes through here too, so it meets the same inbox."""
    if not events:
        return 0
    applied = 0
    outer_event_id = event_id_var.get()
    try:
        result = await session.execute(_CLAIM, {"group": group_id, "ids": [event.id for event in events],
                                                "types": [event.type for event in events]})
        claimed = set(result.scalars())
        batched: dict[str, list[CloudEvent]] = {}
        for event in events:
            if event.id not in claimed:
                continue
            claimed.discard(event.id)  # an id twice in one batch is applied once
            applied += 1
            handler = handlers[event.type]
            if isinstance(handler, Batched):
                batched.setdefault(event.type, []).append(event)
                continue
            event_id_var.set(str(event.id))
            await handler(session, event)
        event_id_var.set(outer_event_id)
        for event_type, of_type in batched.items():
            await cast(Batched, handlers[event_type]).apply(session, of_type)
    finally:
        event_id_var.set(outer_event_id)
    return applied


def describe_error(exc: BaseException) -> str:
    """The error of a dead letter, without the record's values: a validation error names its fields and what is
    wrong with them (not the input), a database error gives the driver's message (not the statement's
    parameters), since both are listed to operators and sent in the DLQ topic's `dlq_error` header."""
    if isinstance(exc, ValidationError):
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(body)'}: {e['msg']}"
                             for e in exc.errors(include_input=False, include_url=False))
        return f"ValidationError: {problems}"
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        return f"{type(exc).__name__}: {str(exc.orig).splitlines()[0] if str(exc.orig) else type(exc.orig).__name__}"
    return f"{type(exc).__name__}: {exc}"


class _CommitOnRevoke(ConsumerRebalanceListener):
    def __init__(self, runner: ConsumerRunner) -> None:
        self.runner = runner

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        try:
            await self.runner.commit_processed()
        except ConsumerStuck as exc:
            # Inside a rebalance we cannot restart the consumer; the next commit outside it will.
            log.warning("offset commit on revoke gave up", extra={"error": repr(exc)})

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        return None


class ConsumerRunner:
    """Consumes topics for one consumer group and hands each event to the handler of its type."""

    def __init__(self, settings: ServiceSettings, *, service: str, group_id: str, topics: list[str],
                 handlers: Mapping[str, Handler | Batched], sessionmaker: async_sessionmaker[AsyncSession],
                 may_lag: bool = False) -> None:
        self.settings = settings
        self.service = service
        self.group_id = group_id
        self.topics = topics
        self.handlers = dict(handlers)
        self.sessionmaker = sessionmaker
        #: A projection's rounds: the broker answers a fetch after this wait or this many bytes (ServiceSettings;
        #: 100 ms by default).
        self._fetch: dict[str, int] = {"fetch_max_wait_ms": settings.projection_fetch_max_wait_ms,
                                       "fetch_min_bytes": settings.projection_fetch_min_bytes} if may_lag else {}
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        self._processed: dict[TopicPartition, int] = {}
        #: The offset commit under way while the next round is fetched (at most one).
        self._committing: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        backoff = 0.2
        while not self._stopping.is_set():
            try:
                await self._consume()
                backoff = 0.2
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("consumer interrupted; rejoining", extra={"group": self.group_id, "error": repr(exc)})
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), backoff)
                backoff = min(backoff * 2, 10.0)
            finally:
                await self._close()

    async def _close(self) -> None:
        with contextlib.suppress(Exception):
            await self._commit_landed()  # what was applied is committed if the broker still takes it
        for client in (self._consumer, self._producer):
            if client is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(client.stop(), 10)
        self._consumer = self._producer = None
        self._processed.clear()

    async def _consume(self) -> None:
        self._consumer = new_consumer(self.settings, group_id=self.group_id, client_id=f"{self.service}-consumer",
                                      **self._fetch)
        self._consumer.subscribe(self.topics, listener=_CommitOnRevoke(self))
        self._producer = new_producer(self.settings, client_id=f"{self.service}-dlq")
        await self._consumer.start()
        await self._producer.start()
        while not self._stopping.is_set():
            batches = await self._consumer.getmany(timeout_ms=500, max_records=BATCH_MAX_RECORDS)
            if self._stopping.is_set():
                break
            # The whole fetch, every partition, in one transaction: each partition's records stay in their order
            # (a key lives in one partition), and fewer, larger batches make fewer statements per record.
            if not await self.apply_batch([record for records in batches.values() for record in records]):
                for tp, records in batches.items():
                    for record in records:
                        if self._stopping.is_set():
                            break
                        await self.handle(record)
                        self._processed[tp] = record.offset + 1
            else:
                for tp, records in batches.items():
                    self._processed[tp] = records[-1].offset + 1
            for tp in batches:
                highwater = self._consumer.highwater(tp)
                if highwater is not None and tp in self._processed:
                    CONSUMER_LAG.labels(self.service, self.group_id, tp.topic, str(tp.partition)).set(
                        max(highwater - self._processed[tp], 0))
            await self._commit_in_background()

    async def _commit_in_background(self) -> None:
        """Commit what was applied while the next round is fetched; the previous commit must have landed first (its
        failure to land in time makes the runner rejoin, as a blocking commit would)."""
        await self._commit_landed()
        if self._consumer is not None and self._processed:
            offsets = dict(self._processed)
            self._processed.clear()
            self._committing = asyncio.create_task(self._commit(self._consumer, offsets))

    async def _commit_landed(self) -> None:
        committing, self._committing = self._committing, None
        if committing is not None:
            await committing

    async def commit_processed(self) -> None:
        """Commit the offsets of what was applied (after any commit still under way)."""
        await self._commit_landed()
        if self._consumer is None or not self._processed:
            return
        offsets = dict(self._processed)
        self._processed.clear()
        await self._commit(self._consumer, offsets)

    async def _commit(self, consumer: AIOKafkaConsumer, offsets: dict[TopicPartition, int]) -> None:
        try:
            # aiokafka retries a commit for as long as the error is "retriable"; a partition that vanished with
            # a restarted broker is, forever. Bound it, and rejoin with a fresh consumer instead.
            await asyncio.wait_for(consumer.commit(offsets), COMMIT_TIMEOUT_SECONDS)
        except TimeoutError as exc:
            raise ConsumerStuck(f"offset commit did not complete in {COMMIT_TIMEOUT_SECONDS}s") from exc
        except Exception as exc:
            # A rebalance moved the partitions: the new owner re-reads from the last commit, and the inbox
            # makes that harmless.
            log.warning("offset commit failed", extra={"group": self.group_id, "error": repr(exc)})

    async def apply_batch(self, records: list[ConsumerRecord[bytes, bytes]]) -> bool:
        """Applies the records in one transaction; False (nothing applied) if any is malformed or fails."""
        if len(records) < 2:
            return False
        try:
            events = [CloudEvent.from_bytes(record.value) for record in records]
        except (ValueError, ValidationError):
            return False
        known = [event for event in events if event.type in self.handlers]
        try:
            applied = await apply_once(self.sessionmaker, self.group_id, self.handlers, known)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.info("batch failed; applying its records one by one", extra={"group": self.group_id,
                                                                              "error": repr(exc)})
            return False
        CONSUMER_RECORDS.labels(self.service, self.group_id, "applied").inc(applied)
        CONSUMER_RECORDS.labels(self.service, self.group_id, "duplicate").inc(len(known) - applied)
        CONSUMER_RECORDS.labels(self.service, self.group_id, "ignored").inc(len(events) - len(known))
        return True

    async def handle(self, record: ConsumerRecord[bytes, bytes]) -> None:
        """Process one record: apply once, retry while it may help, else dead-letter it."""
        try:
            event = CloudEvent.from_bytes(record.value)
        except (ValueError, ValidationError) as exc:
            await self._dead_letter(record, "malformed event: " + describe_error(exc))
            return
        if event.type not in self.handlers:
            CONSUMER_RECORDS.labels(self.service, self.group_id, "ignored").inc()
            return
        event_id_var.set(str(event.id))
        try:
            attempt = 0
            while True:
                try:
                    applied = await apply_once(self.sessionmaker, self.group_id, self.handlers, [event])
                    CONSUMER_RECORDS.labels(self.service, self.group_id, "applied" if applied else "duplicate").inc()
                    return
                except (PermanentError, ValidationError) as exc:
                    await self._dead_letter(record, describe_error(exc), event)
                    return
                except Exception as exc:
                    if database_unavailable(exc):
                        # Not the record's fault: wait for the database without spending attempts.
                        log.warning("database unreachable while consuming; waiting", extra={"error": repr(exc)})
                        await asyncio.sleep(1.0)
                        if self._stopping.is_set():
                            raise
                        continue
                    attempt += 1
                    if attempt >= self.settings.consumer_max_attempts:
                        await self._dead_letter(record, describe_error(exc), event)
                        return
                    log.warning("handler failed; retrying", extra={"attempt": attempt, "error": repr(exc)})
                    await asyncio.sleep(min(0.05 * 2**attempt, 2.0))
        finally:
            event_id_var.set(None)

    async def _dead_letter(self, record: ConsumerRecord[bytes, bytes], error: str,
                           event: CloudEvent | None = None) -> None:
        assert self._producer is not None
        error = error[:2000]
        # Recorded before the topic (once per source record, so a redelivery after a crash in between is
        # harmless), both awaited before the offset moves on: a record is never dropped, only parked.
        await self._record_dead_letter(record, error, event)
        headers = [*(record.headers or ()),
                   ("dlq_error", error.encode()), ("dlq_topic", record.topic.encode()),
                   ("dlq_partition", str(record.partition).encode()), ("dlq_offset", str(record.offset).encode()),
                   ("dlq_consumer_group", self.group_id.encode())]
        await self._producer.send_and_wait(dead_letter_topic(self.group_id), value=record.value, key=record.key,
                                           headers=headers)
        CONSUMER_RECORDS.labels(self.service, self.group_id, "dead-lettered").inc()
        log.error("record dead-lettered", extra={"group": self.group_id, "topic": record.topic,
                                                  "offset": record.offset, "error": error[:500]})

    async def _record_dead_letter(self, record: ConsumerRecord[bytes, bytes], error: str,
                                  event: CloudEvent | None) -> None:
        """The dead letter's row in the service's database, for the admin API and CLI (shared/dead_letters.py)."""
        async with self.sessionmaker() as session, session.begin():
            await session.execute(insert(dead_letters).values(
                consumer_group=self.group_id, topic=record.topic, kafka_partition=record.partition,
                kafka_offset=record.offset, key=record.key, payload=record.value or b"", error=error,
                event_id=event.id if event else None, event_type=event.type if event else None,
                event_time=event.time if event else None,
            ).on_conflict_do_nothing(index_elements=["consumer_group", "topic", "kafka_partition", "kafka_offset"]))
