"""The transactional outbox: events written with the state change, published by one relay per service.

A service calls `publish` (one event) or `publish_many` (a batch) inside its request transaction. The relay (one
active per service, chosen by a PostgreSQL advisory lock held on its own connection; other replicas and worker
processes stand by) is woken after the writer's commit, never from inside it (a NOTIFY in a transaction takes a
cluster-wide lock through its commit, serialising the commits of every service on the cluster): directly when this
process's relay leads, else by one coalesced NOTIFY on an autocommit connection of its own; and it polls besides. It
publishes unpublished rows in id order in batches, marks them published only after the broker acknowledged
them, and fetches the next batch while the last one is being marked. While the broker is down nothing is
marked, so nothing is lost; the batch is retried with backoff. Rows of one aggregate are written under that
aggregate's row lock, so their ids follow their commit order and they are published in order. Sent rows are
kept as long as their topic keeps its records, so that a broker that lost what it had acknowledged gets that
history back (see OutboxRelay).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
import zlib
from collections.abc import Iterable
from typing import Any

import asyncpg
import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import RecordMetadata
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from shared.db import asyncpg_url
from shared.events.catalogue import CATALOGUE, D, EventType
from shared.events.envelope import CloudEvent
from shared.events.topics import SpmField
from shared.kafka import client_options, new_producer
from shared.observability import OUTBOX_BACKLOG, OUTBOX_LEADER, OUTBOX_PUBLISHED, OUTBOX_RESENT, event_id_var
from shared.retention import delete_expired_outbox
from shared.settings import ServiceSettings
from shared.tables import outbox

log = logging.getLogger(__name__)

#: How long a check that the broker still holds what it acknowledged stays good (see OutboxRelay).
BROKER_CHECK_SECONDS = 5.0
#: The longest the relay backs off before retrying (a lost connection, a failing broker).
MAX_BACKOFF_SECONDS = 10.0
#: Sends between two turns of the event loop while the relay publishes a batch.
YIELD_EVERY = 50


def _channel(service: str) -> str:
    return f"outbox_{service.replace('-', '_')}"


def _lock_key(service: str) -> int:
    return zlib.crc32(f"outbox-relay:{service}".encode())


#: The outbox columns an event fills, in the order `publish_many` writes them.
_OUTBOX_COLUMNS = ("event_id", "event_type", "topic", "key", "payload")
#: One statement object for every publish, so SQLAlchemy's compiled cache finds it without building it again.
_INSERT_OUTBOX = sa.insert(outbox)
#: From this many events on, `publish_many` writes by COPY (one round trip, no statement per row).
COPY_FROM = 200


async def enqueue(session: AsyncSession, service: str, events: Iterable[tuple[CloudEvent, str, str]]) -> int:
    """Write raw rows (event, topic, key) into the outbox in the caller's transaction; the relay wakes after commit.

    The relay's own tests write probe events to topics of their own this way; services write the catalogue's events
    through `publish` and `publish_many`, which choose topic and key (tests/test_architecture.py holds them to it)."""
    rows = [{"event_id": event.id, "event_type": event.type, "topic": topic, "key": key,
             "payload": event.to_bytes()} for event, topic, key in events]
    if not rows:
        return 0
    await session.execute(sa.insert(outbox), rows)
    session.info.setdefault(_WAKE_AFTER_COMMIT, set()).add(service)
    return len(rows)


#: session.info key: the services whose relay the session's commit wakes (see _wake_after_commit).
_WAKE_AFTER_COMMIT = "outbox_wake_after_commit"


@sa.event.listens_for(Session, "after_commit")
def _wake_after_commit(session: Session) -> None:
    """Runs once the transaction committed (in the event loop's thread): wake the relays of what it enqueued."""
    services = session.info.pop(_WAKE_AFTER_COMMIT, None)
    if services:
        bind = session.get_bind()
        engine = bind.engine if isinstance(bind, sa.Connection) else bind
        url = engine.url.render_as_string(hide_password=False)
        for service in services:
            wake_relay(service, url)


@sa.event.listens_for(Session, "after_rollback")
def _forget_wake(session: Session) -> None:
    session.info.pop(_WAKE_AFTER_COMMIT, None)


def _database_of(database_url: str) -> tuple[str | None, int | None, str | None]:
    url = make_url(database_url)
    return url.host, url.port, url.database


#: The relays running in this process, by (database, service): a commit here wakes a leading one directly.
_local_relays: dict[tuple[tuple[str | None, int | None, str | None], str], set[OutboxRelay]] = {}
#: Per event loop, the coalescing NOTIFY senders, by (database URL, service).
_notifiers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[str, str], _Notifier]] = (
    weakref.WeakKeyDictionary())


def wake_relay(service: str, database_url: str) -> None:
    """Wake the service's leading relay after a commit that wrote outbox rows (call it outside the transaction,
    from the event loop; writers through `publish` need not: the session's commit calls it). The relay of this
    process if it leads (no round trip), else a NOTIFY that the leader elsewhere LISTENs for; wake-ups that arrive
    while a NOTIFY is on its way share the next one. A lost wake-up costs a poll interval, never an event."""
    relays = _local_relays.get((_database_of(database_url), service), ())
    leading = [relay for relay in relays if relay.is_leader]
    if leading:
        for relay in leading:
            relay.wake()
        return
    loop = asyncio.get_running_loop()
    senders = _notifiers.setdefault(loop, {})
    sender = senders.get((database_url, service))
    if sender is None:
        sender = senders[(database_url, service)] = _Notifier(database_url, _channel(service))
    sender.signal()


async def close_notifiers() -> None:
    """Close this event loop's NOTIFY connections (at shutdown)."""
    for sender in _notifiers.pop(asyncio.get_running_loop(), {}).values():
        await sender.shutdown()


class _Notifier:
    """Sends NOTIFY on a connection of its own in autocommit: one at a time, the signals meanwhile coalesced."""

    def __init__(self, database_url: str, channel: str) -> None:
        self._url = asyncpg_url(database_url)
        self._channel = channel
        self._due = False
        self._conn: asyncpg.Connection | None = None
        self._task: asyncio.Task[None] | None = None

    def signal(self) -> None:
        self._due = True
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._send())

    async def _send(self) -> None:
        while self._due:
            self._due = False
            for attempt in (1, 2):  # a connection the server closed while idle is replaced once
                try:
                    if self._conn is None or self._conn.is_closed():
                        self._conn = await asyncpg.connect(self._url, timeout=10)
                    await self._conn.execute(f"NOTIFY {self._channel}")
                    break
                except Exception as exc:
                    await self.close()
                    if attempt == 2:
                        log.info("outbox wake-up failed; the relay's poll will find the rows",
                                 extra={"error": repr(exc)})

    async def shutdown(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
        await self.close()

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), 5)


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


class _BrokerClients:
    """The leader's clients: the producer, and the two that read what the broker holds (its end offsets)."""

    def __init__(self, settings: ServiceSettings, service: str) -> None:
        self.producer = new_producer(settings, client_id=f"{service}-outbox")
        self._admin = AIOKafkaAdminClient(client_id=f"{service}-outbox-check", **client_options(settings))
        self._offsets = AIOKafkaConsumer(group_id=None, enable_auto_commit=False,
                                         client_id=f"{service}-outbox-check", **client_options(settings))

    async def start(self) -> None:
        try:
            await self.producer.start()
            await self._admin.start()
            await self._offsets.start()
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        for close in (self.producer.stop, self._admin.close, self._offsets.stop):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(close(), 5)

    async def end_offsets(self, topics: set[str]) -> dict[TopicPartition, int]:
        """The end offset of every partition the broker has of these topics (a missing one is not in the result)."""
        # Every topic's metadata: naming topics would have a broker that creates topics on use create them.
        described = await self._admin.describe_topics()
        partitions = [TopicPartition(t["topic"], p["partition"]) for t in described
                      if t["topic"] in topics and t["error_code"] == 0 for p in t["partitions"]]
        return dict(await self._offsets.end_offsets(partitions)) if partitions else {}


class OutboxRelay:
    """Publishes a service's outbox to Kafka; run it as a background task in every replica.

    Sent rows stay for their topic's retention (then shared/retention.py deletes them), and the leader keeps in
    `outbox_offsets` the end offset the broker acknowledged per topic partition. When it starts leading, whenever it
    connects afresh (after any failure) and then every BROKER_CHECK_SECONDS, before it publishes or while idle, it
    compares those with the broker's end offsets (one metadata and one ListOffsets request): a partition that is
    missing or ends lower means the broker lost records it had acknowledged (a memory-only broker restarted, a topic
    deleted and created again), and the relay sends that topic's kept rows again, in outbox order and with their
    event ids, keys and send times, before anything new. A broker that lost nothing ends at or beyond every recorded
    offset (retention moves a partition's start, never its end), so nothing is sent again. A loss between two checks
    that the producer rode over by reconnecting shows in the next acknowledgements (a record placed before a
    recorded end): the history is sent again at once, after that batch. This assumes, as the contract does, that
    each topic has one publishing service: another producer's records would hide a loss.
    """

    def __init__(self, settings: ServiceSettings, service: str) -> None:
        self.settings = settings
        self.service = service
        self.is_leader = False
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        #: The leader's copy of outbox_offsets, loaded when it starts leading.
        self._acknowledged: dict[TopicPartition, int] = {}
        #: Set when a batch's acknowledgements show the broker lost data since the last check.
        self._check_now = False

    async def run(self) -> None:
        backoff = 0.2
        local = _local_relays.setdefault((_database_of(self.settings.database_url), self.service), set())
        local.add(self)
        try:
            while not self._stopping.is_set():
                try:
                    await self._lead()
                    backoff = 0.2
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.warning("outbox relay interrupted, retrying",
                                extra={"error": repr(exc), "service": self.service})
                    await self._sleep(backoff)
                    backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
                finally:
                    self._set_leader(False)
        finally:
            local.discard(self)

    def wake(self) -> None:
        """Something was committed to the outbox: publish now rather than at the next poll."""
        self._wake.set()

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
        marker: asyncpg.Connection | None = None
        try:
            # Stand by until this replica holds the lock; it is released when the connection dies.
            while not await conn.fetchval("SELECT pg_try_advisory_lock($1)", _lock_key(self.service)):
                self._set_leader(False)
                await self._sleep(max(self.settings.outbox_poll_interval_seconds, 1.0))
                if self._stopping.is_set():
                    return
            # A second connection marks what was sent while the first fetches the next batch. Only the leader
            # (who holds the lock on `conn`) has one; if `conn` dies, the lock goes and this relay starts over.
            marker = await relay_connection(self.settings)
            self._set_leader(True)
            await conn.add_listener(_channel(self.service), lambda *_: self._wake.set())
            self._acknowledged = {TopicPartition(r["topic"], r["kafka_partition"]): r["end_offset"]
                                  for r in await conn.fetch("SELECT * FROM outbox_offsets")}
            await self._publish_until_stopped(conn, marker)
        finally:
            for connection in (marker, conn):
                if connection is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(connection.close(), 5)

    async def _publish_until_stopped(self, conn: asyncpg.Connection, marker: asyncpg.Connection) -> None:
        broker: _BrokerClients | None = None
        backoff = 0.2
        check_due = 0.0
        loop = asyncio.get_running_loop()
        # The batch being marked published (on `marker`) while the next one is fetched, sent and acknowledged:
        # its rows are left out of the fetch. A batch is sent only after the one before was acknowledged, so the
        # rows of one key still reach the broker in id order; marking is awaited before the next one starts.
        marking: asyncio.Task[None] | None = None
        marking_ids: list[int] = []
        try:
            while not self._stopping.is_set():
                self._wake.clear()
                rows = await conn.fetch(
                    "SELECT id, topic, key, payload, event_id, event_type FROM outbox WHERE published_at IS NULL "
                    "AND id <> ALL($2::bigint[]) ORDER BY id LIMIT $1", self.settings.outbox_batch_size, marking_ids)
                # A short batch is the whole backlog; count only when there is more than one batch.
                OUTBOX_BACKLOG.labels(self.service).set(
                    len(rows) if len(rows) < self.settings.outbox_batch_size
                    else await conn.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL"))
                if self._check_now or not rows:
                    # The check needs the offsets of everything sent; idling needs nothing in flight.
                    await _finish(marking)
                    marking, marking_ids = None, []
                    if self._check_now:
                        self._check_now, check_due = False, 0.0
                # Check with fresh clients (leading anew, or after a failure), and when the last check is old.
                check = bool(self._acknowledged) and (broker is None or loop.time() >= check_due)
                if check and marking is not None:
                    await _finish(marking)
                    marking, marking_ids = None, []
                if not rows and not check:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self.settings.outbox_poll_interval_seconds)
                    continue
                try:
                    if broker is None:
                        broker = _BrokerClients(self.settings, self.service)
                        await broker.start()
                    if check:
                        if lost := await self._lost_topics(broker):
                            # Fresh clients: a producer that knew the lost topics' partitions would write to them
                            # without asking the broker for the topics (a memory-only broker then hides the records).
                            await broker.stop()
                            broker = _BrokerClients(self.settings, self.service)
                            await broker.start()
                            await self._resend(conn, broker.producer, lost)
                        check_due = loop.time() + BROKER_CHECK_SECONDS
                    sent = await self._publish(broker.producer, rows)
                    backoff = 0.2
                except Exception as exc:
                    # Broker unreachable or refusing: keep the rows, back off, start fresh clients.
                    log.warning("outbox publish (or broker check) failed; rows kept for retry",
                                extra={"error": repr(exc), "rows": len(rows), "service": self.service})
                    await _finish(marking)
                    marking, marking_ids = None, []
                    await conn.execute("UPDATE outbox SET attempts = attempts + 1 WHERE id = ANY($1::bigint[])",
                                       [r["id"] for r in rows])
                    if broker is not None:
                        await broker.stop()
                        broker = None
                    await self._sleep(backoff)
                    backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
                    continue
                if not rows:
                    continue
                await _finish(marking)
                ids = [r["id"] for r in rows]
                marking, marking_ids = asyncio.create_task(self._mark(marker, ids, sent)), ids
            await _finish(marking)
        finally:
            if marking is not None and not marking.done():
                marking.cancel()
                with contextlib.suppress(BaseException):
                    await marking
            if broker is not None:
                await broker.stop()

    async def _mark(self, conn: asyncpg.Connection, ids: list[int], sent: list[RecordMetadata]) -> None:
        """Mark a sent batch published and record the end offsets the broker acknowledged, in one transaction."""
        async with conn.transaction():
            await conn.execute("UPDATE outbox SET published_at = now() WHERE id = ANY($1::bigint[])", ids)
            if self._landed_below_acknowledged(sent):
                self._check_now = True  # the broker lost data since the check: give the history back next round
            await self._record(conn, _acknowledged_ends(sent), replace=False)
        OUTBOX_PUBLISHED.labels(self.service).inc(len(ids))

    async def _publish(self, producer: AIOKafkaProducer, rows: list[asyncpg.Record], *,
                       again: bool = False) -> list[RecordMetadata]:
        # Sends are queued in id order; the producer keeps per-partition order, and we wait for all acks.
        futures = []
        for i, row in enumerate(rows, start=1):
            if i % YIELD_EVERY == 0:
                await asyncio.sleep(0)  # a send rarely waits: a batch would otherwise hold the loop from requests
            event_id_var.set(str(row["event_id"]))
            headers = [("content-type", b"application/cloudevents+json"),
                       ("ce_id", str(row["event_id"]).encode()), ("ce_type", row["event_type"].encode()),
                       ("ce_source", f"/posyandu/{self.service}".encode())]
            # A record sent again keeps the time it was first sent: Kafka's time retention counts from it.
            timestamp_ms = round(row["published_at"].timestamp() * 1000) if again else None
            futures.append(await producer.send(row["topic"], value=bytes(row["payload"]), key=row["key"].encode(),
                                               headers=headers, timestamp_ms=timestamp_ms))
        event_id_var.set(None)
        return list(await asyncio.gather(*futures))

    async def _lost_topics(self, broker: _BrokerClients) -> list[str]:
        """The topics of which the broker lacks a partition, or ends one before an offset it acknowledged."""
        now_ends = await broker.end_offsets({tp.topic for tp in self._acknowledged})
        return sorted({tp.topic for tp, end in self._acknowledged.items() if now_ends.get(tp, -1) < end})

    async def _resend(self, conn: asyncpg.Connection, producer: AIOKafkaProducer, lost: list[str]) -> None:
        """Send the kept rows of these topics again, in outbox order, then record where they are now."""
        log.warning("the broker lost events it had acknowledged; sending the kept ones again",
                    extra={"topics": lost, "service": self.service})
        # Not what the topic would no longer hold (the scheduled clean-up may not have run yet).
        await delete_expired_outbox(conn, self.settings, self.service)
        ends: dict[TopicPartition, int] = {}
        after = resent = 0
        while rows := await conn.fetch(
                "SELECT id, topic, key, payload, event_id, event_type, published_at FROM outbox "
                "WHERE published_at IS NOT NULL AND topic = ANY($1::text[]) AND id > $2 ORDER BY id LIMIT $3",
                lost, after, self.settings.outbox_batch_size):
            for tp, end in _acknowledged_ends(await self._publish(producer, rows, again=True)).items():
                ends[tp] = max(ends.get(tp, 0), end)
            after, resent = rows[-1]["id"], resent + len(rows)
            OUTBOX_RESENT.labels(self.service).inc(len(rows))
        # Only now, with the whole history back, do the lower offsets replace the recorded ones: an interrupted
        # resend is detected again and started over (the copies it leaves share their event ids).
        async with conn.transaction():
            await conn.execute("DELETE FROM outbox_offsets WHERE topic = ANY($1::text[])", lost)
            self._acknowledged = {tp: end for tp, end in self._acknowledged.items() if tp.topic not in lost}
            await self._record(conn, ends, replace=True)
        log.warning("the kept events are on the broker again",
                    extra={"topics": lost, "records": resent, "service": self.service})

    def _landed_below_acknowledged(self, sent: list[RecordMetadata]) -> bool:
        return any(md.offset < self._acknowledged.get(md.topic_partition, 0) for md in sent)

    async def _record(self, conn: asyncpg.Connection, ends: dict[TopicPartition, int], *, replace: bool) -> None:
        """Record end offsets the broker acknowledged. Outside a resend an offset never goes down, so a loss that a
        batch revealed is still detected at the next check."""
        if not ends:
            return
        await conn.execute(
            "INSERT INTO outbox_offsets AS o (topic, kafka_partition, end_offset) "
            "SELECT * FROM unnest($1::text[], $2::int[], $3::bigint[]) "
            "ON CONFLICT (topic, kafka_partition) DO UPDATE SET end_offset = "
            + ("excluded.end_offset" if replace else "greatest(o.end_offset, excluded.end_offset)"),
            [tp.topic for tp in ends], [tp.partition for tp in ends], list(ends.values()))
        for tp, end in ends.items():
            self._acknowledged[tp] = end if replace else max(self._acknowledged.get(tp, 0), end)


async def _finish(marking: asyncio.Task[None] | None) -> None:
    """Wait for a batch's marking; its failure (a lost connection) is the relay's, which then starts over."""
    if marking is not None:
        await marking


def _acknowledged_ends(sent: list[RecordMetadata]) -> dict[TopicPartition, int]:
    """Per partition, an end offset a broker that keeps these acknowledged records reports at least: the offset of
    the first record this batch put there, plus one. (Not its last record's: Tansu reports the first offset of a
    partition's last record batch, plus one, as its end.)"""
    ends: dict[TopicPartition, int] = {}
    for md in sent:
        ends[md.topic_partition] = min(ends.get(md.topic_partition, md.offset + 1), md.offset + 1)
    return ends


async def publish(session: AsyncSession, event_type: EventType[D], data: D, *, subject: str,
                  regioncode: str | None = None, spmfield: SpmField | None = None) -> CloudEvent:
    """Record one event of the catalogue in the outbox, in the caller's transaction; the event written."""
    event = event_type.new(data, subject=subject, regioncode=regioncode, spmfield=spmfield)
    await publish_many(session, [event])
    return event


def outbox_row(event: CloudEvent) -> tuple[Any, ...]:
    """An event's outbox row (`_OUTBOX_COLUMNS`): its type's topic (chosen by its `spmfield` for referral events),
    keyed by its subject, the aggregate id (DESIGN.md §2)."""
    return (event.id, event.type, CATALOGUE[event.type].topic_for(event.spmfield), event.subject, event.to_bytes())


def outbox_rows(session: AsyncSession, events: Iterable[CloudEvent]) -> list[tuple[Any, ...]]:
    """The outbox rows (`_OUTBOX_COLUMNS`) of events of the catalogue (made by `EventType.new`), in this order, for
    a caller that writes them in its own statement in the session's transaction; the session's commit then wakes
    their relays."""
    rows, publishers = [], set()
    for event in events:
        publishers.add(CATALOGUE[event.type].publisher)
        rows.append(outbox_row(event))
    if rows:
        session.info.setdefault(_WAKE_AFTER_COMMIT, set()).update(publishers)
    return rows


def insert_outbox_row(gate: sa.FromClause) -> sa.Insert:
    """An INSERT of one event's outbox row per row of `gate` (the caller's state change, a CTE with RETURNING: no row
    when it wrote nothing), for a use case that writes its event in its own statement; binds `outbox_parameters`."""
    row = sa.select(*(sa.bindparam(f"outbox_{name}", type_=outbox.c[name].type) for name in _OUTBOX_COLUMNS))
    return sa.insert(outbox).from_select(list(_OUTBOX_COLUMNS), row.select_from(gate))


def outbox_parameters(session: AsyncSession, event: CloudEvent) -> dict[str, Any]:
    """The values `insert_outbox_row` binds for an event of the catalogue (its row of `outbox_rows`, which also has
    the session's commit wake the relay)."""
    (row,) = outbox_rows(session, [event])
    return {f"outbox_{name}": value for name, value in zip(_OUTBOX_COLUMNS, row, strict=True)}


async def publish_many(session: AsyncSession, events: Iterable[CloudEvent]) -> int:
    """Record events of the catalogue in the outbox, in the caller's transaction and in this order (`outbox_rows`);
    how many. Large batches (a bulk import, a republish) are written by COPY."""
    rows = outbox_rows(session, events)
    copied = rows[1:] if len(rows) >= COPY_FROM else []
    if rows:
        # At least the first by INSERT: it also opens the driver's transaction, which COPY on the raw connection
        # would not; the outbox's ids, hence the publishing order, follow the order of insertion.
        await session.execute(_INSERT_OUTBOX, [dict(zip(_OUTBOX_COLUMNS, row, strict=True))
                                               for row in rows[:len(rows) - len(copied)]])
    if copied:
        raw = await (await session.connection()).get_raw_connection()
        conn: asyncpg.Connection = raw.driver_connection
        await conn.copy_records_to_table("outbox", records=copied, columns=list(_OUTBOX_COLUMNS))
    return len(rows)
