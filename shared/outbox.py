"""The transactional outbox: events written with the state change, published by one relay per service.

A service calls `enqueue` inside its request transaction. The relay (one active per service, chosen by a
PostgreSQL advisory lock held on its own connection; other replicas stand by) wakes on NOTIFY or on a
poll, publishes unpublished rows in id order in batches, and marks them published only after the broker
acknowledged them. While the broker is down nothing is marked, so nothing is lost; the batch is retried
with backoff. Rows of one aggregate are written under that aggregate's row lock, so their ids follow
their commit order and they are published in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import zlib
from collections.abc import Iterable
from datetime import timedelta

import asyncpg
import sqlalchemy as sa
from aiokafka import AIOKafkaProducer
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import asyncpg_url
from shared.events.catalogue import EventType
from shared.events.envelope import CloudEvent
from shared.events.topics import SpmField
from shared.kafka import new_producer
from shared.observability import OUTBOX_BACKLOG, OUTBOX_LEADER, OUTBOX_PUBLISHED, event_id_var
from shared.settings import ServiceSettings
from shared.tables import outbox

log = logging.getLogger(__name__)

#: How long published rows are kept (for inspection) before the relay purges them.
PUBLISHED_RETENTION = timedelta(days=7)
#: The longest the relay backs off before retrying (a lost connection, a failing broker).
MAX_BACKOFF_SECONDS = 10.0
#: Sends between two turns of the event loop while the relay publishes a batch.
YIELD_EVERY = 50


def _channel(service: str) -> str:
    return f"outbox_{service.replace('-', '_')}"


def _lock_key(service: str) -> int:
    return zlib.crc32(f"outbox-relay:{service}".encode())


async def enqueue(session: AsyncSession, service: str, events: Iterable[tuple[CloudEvent, str, str]]) -> int:
    """Write events (event, topic, key) into the outbox in the caller's transaction; NOTIFY fires on commit."""
    rows = [{"event_id": event.id, "event_type": event.type, "topic": topic, "key": key,
             "payload": event.to_bytes()} for event, topic, key in events]
    if not rows:
        return 0
    await session.execute(sa.insert(outbox), rows)
    # One NOTIFY per transaction (or savepoint, whose rollback would take the NOTIFY with it) wakes the relay.
    transaction = session.get_nested_transaction() or session.get_transaction()
    if session.info.get("outbox_notified") is not transaction:
        await session.execute(sa.select(sa.func.pg_notify(_channel(service), "")))
        session.info["outbox_notified"] = transaction
    return len(rows)


async def relay_connection(settings: ServiceSettings) -> asyncpg.Connection:
    """The relay's own connection, with the pool's timeouts (shared/db.py).

    Its session holds the leader's advisory lock, released only when the session ends. If the relay loses the
    connection silently (a partition, a half-open connection after a failover), the server may not notice for hours
    and no relay could lead; so the session ends by itself once idle for twice the longest the relay idles on purpose
    (a poll, a standby's lock retry, a backoff, a publish attempt bounded by Kafka's request timeout; a longer pause
    costs only a reconnect). TCP keepalives and tcp_user_timeout need TCP end to end (not a unix socket, nor a proxy),
    and client_connection_check_interval acts only while a query runs."""
    longest_idle = max(settings.outbox_poll_interval_seconds, 1.0, MAX_BACKOFF_SECONDS,
                       settings.kafka_request_timeout_ms / 1000)
    return await asyncpg.connect(asyncpg_url(settings.database_url),
                                 timeout=settings.database_connect_timeout_seconds,
                                 command_timeout=settings.database_command_timeout_seconds,
                                 server_settings={"idle_session_timeout": f"{round(2000 * longest_idle)}ms"})


class OutboxRelay:
    """Publishes a service's outbox to Kafka; run it as a background task in every replica."""

    def __init__(self, settings: ServiceSettings, service: str) -> None:
        self.settings = settings
        self.service = service
        self.is_leader = False
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()

    async def run(self) -> None:
        backoff = 0.2
        while not self._stopping.is_set():
            try:
                await self._lead()
                backoff = 0.2
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("outbox relay interrupted, retrying", extra={"error": repr(exc), "service": self.service})
                await self._sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
            finally:
                self._set_leader(False)

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    def _set_leader(self, leader: bool) -> None:
        self.is_leader = leader
        OUTBOX_LEADER.labels(self.service).set(1 if leader else 0)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def _lead(self) -> None:
        conn = await relay_connection(self.settings)
        try:
            # Stand by until this replica holds the lock; it is released when the connection dies.
            while not await conn.fetchval("SELECT pg_try_advisory_lock($1)", _lock_key(self.service)):
                self._set_leader(False)
                await self._sleep(max(self.settings.outbox_poll_interval_seconds, 1.0))
                if self._stopping.is_set():
                    return
            self._set_leader(True)
            await conn.add_listener(_channel(self.service), lambda *_: self._wake.set())
            await self._publish_until_stopped(conn)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), 5)

    async def _publish_until_stopped(self, conn: asyncpg.Connection) -> None:
        producer = None
        backoff = 0.2
        purge_due = 0.0
        loop = asyncio.get_running_loop()
        try:
            while not self._stopping.is_set():
                self._wake.clear()
                rows = await conn.fetch(
                    "SELECT id, topic, key, payload, event_id, event_type FROM outbox WHERE published_at IS NULL "
                    "ORDER BY id LIMIT $1", self.settings.outbox_batch_size)
                # A short batch is the whole backlog; count only when there is more than one batch.
                OUTBOX_BACKLOG.labels(self.service).set(
                    len(rows) if len(rows) < self.settings.outbox_batch_size
                    else await conn.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL"))
                if not rows:
                    if loop.time() >= purge_due:
                        await conn.execute("DELETE FROM outbox WHERE published_at < now() - $1::interval",
                                           PUBLISHED_RETENTION)
                        purge_due = loop.time() + 600
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self.settings.outbox_poll_interval_seconds)
                    continue
                try:
                    if producer is None:
                        producer = new_producer(self.settings, client_id=f"{self.service}-outbox")
                        await producer.start()
                    await self._publish(producer, rows)
                    backoff = 0.2
                except Exception as exc:
                    # Broker unreachable or refusing: keep the rows, back off, start a fresh producer.
                    log.warning("outbox publish failed; rows kept for retry",
                                extra={"error": repr(exc), "rows": len(rows), "service": self.service})
                    await conn.execute("UPDATE outbox SET attempts = attempts + 1 WHERE id = ANY($1::bigint[])",
                                       [r["id"] for r in rows])
                    if producer is not None:
                        with contextlib.suppress(Exception):
                            await asyncio.wait_for(producer.stop(), 5)
                        producer = None
                    await self._sleep(backoff)
                    backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
                    continue
                await conn.execute("UPDATE outbox SET published_at = now() WHERE id = ANY($1::bigint[])",
                                   [r["id"] for r in rows])
                OUTBOX_PUBLISHED.labels(self.service).inc(len(rows))
        finally:
            if producer is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(producer.stop(), 5)

    async def _publish(self, producer: AIOKafkaProducer, rows: list[asyncpg.Record]) -> None:
        # Sends are queued in id order; the producer keeps per-partition order, and we wait for all acks.
        futures = []
        for i, row in enumerate(rows, start=1):
            if i % YIELD_EVERY == 0:
                await asyncio.sleep(0)  # a send rarely waits: a batch would otherwise hold the loop from requests
            event_id_var.set(str(row["event_id"]))
            headers = [("content-type", b"application/cloudevents+json"),
                       ("ce_id", str(row["event_id"]).encode()), ("ce_type", row["event_type"].encode()),
                       ("ce_source", f"/posyandu/{self.service}".encode())]
            futures.append(await producer.send(row["topic"], value=bytes(row["payload"]),
                                               key=row["key"].encode(), headers=headers))
        event_id_var.set(None)
        await asyncio.gather(*futures)


def outbox_entry(event_type: EventType, data: BaseModel, *, subject: str, key: str | None = None,
                 regioncode: str | None = None, spmfield: SpmField | None = None) -> tuple[CloudEvent, str, str]:
    """One event of the catalogue as an outbox entry (event, topic, key) for `enqueue`."""
    event = event_type.new(data, subject=subject, regioncode=regioncode, spmfield=spmfield)
    return event, event_type.topic_for(spmfield), key or subject


async def publish(session: AsyncSession, event_type: EventType, data: BaseModel, *, subject: str,
                  key: str | None = None, regioncode: str | None = None, spmfield: SpmField | None = None) -> None:
    """Record one event of the catalogue in the outbox, in the caller's transaction."""
    await enqueue(session, event_type.publisher, [outbox_entry(event_type, data, subject=subject, key=key,
                                                                regioncode=regioncode, spmfield=spmfield)])
