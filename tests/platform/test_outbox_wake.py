"""How the outbox relay is woken and how it pipelines (issue 12): the writer's transaction never holds a NOTIFY, a
relay of the same process is woken directly, and batches fetched while the last is marked keep each key's order."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from conftest import Stack, service_settings
from deploy.local.stack import create_topics
from services.registry.settings import RegistrySettings
from shared.db import create_engine, create_sessionmaker
from shared.outbox import OutboxRelay, close_notifiers, enqueue
from tests.support.kafka import read_topic
from tests.support.outbox import probe_event, read_settled
from tests.support.waiting import eventually

CHANNEL = "outbox_registry"


@pytest.fixture
async def fresh_db(stack: Stack) -> AsyncIterator[tuple[RegistrySettings, AsyncEngine]]:
    """A registry database of this test's own: no relay of the session's services publishes from it."""
    dsn = await stack.migrated_database("registry", f"wake_{uuid.uuid4().hex[:8]}")
    settings = RegistrySettings(**service_settings(stack, dsn))
    engine = create_engine(settings)
    yield settings, engine
    await close_notifiers()
    await engine.dispose()


class Notifications:
    """LISTENs on the relay's channel from a connection of its own, and keeps the sender pid of each NOTIFY."""

    def __init__(self) -> None:
        self.senders: list[int] = []
        self._conn: asyncpg.Connection | None = None

    async def start(self, dsn: str) -> None:
        self._conn = await asyncpg.connect(dsn)
        await self._conn.add_listener(CHANNEL, lambda _conn, pid, _channel, _payload: self.senders.append(pid))

    async def receive(self) -> list[int]:
        """The senders so far (notifications are delivered to a connection between its queries)."""
        assert self._conn is not None
        await self._conn.execute("SELECT 1")
        return self.senders

    async def stop(self) -> None:
        if self._conn is not None:
            await self._conn.close()


async def test_the_writer_commits_without_a_notify_and_the_relay_is_woken_after(
        fresh_db: tuple[RegistrySettings, AsyncEngine]) -> None:
    """A NOTIFY inside the writing transaction would take PostgreSQL's cluster-wide notify lock through its commit.
    The wake-up comes after the commit instead, from another backend (a connection of the notifier's own), and is
    only sent for a transaction that committed."""
    settings, engine = fresh_db
    sessionmaker = create_sessionmaker(engine)
    listener = Notifications()
    await listener.start(settings.database_url)
    try:
        key = str(uuid.uuid4())
        async with sessionmaker() as session:
            async with session.begin():
                await enqueue(session, "registry", [(probe_event(key, 0), "test.wake", key)])
                await session.rollback()  # a transaction that does not commit wakes nobody
            async with session.begin():
                writer_pid = await session.scalar(sa.select(sa.func.pg_backend_pid()))
                await enqueue(session, "registry", [(probe_event(key, 1), "test.wake", key)])
                await enqueue(session, "registry", [(probe_event(key, 2), "test.wake", key)])

        async def woken() -> bool:
            return bool(await listener.receive())

        await eventually(woken, "the relay to be woken", timeout=30, interval=0.1)
        assert writer_pid not in listener.senders, "the writer's own transaction sent the NOTIFY"
        assert len(listener.senders) == 1, "two enqueues of one transaction wake the relay once"
    finally:
        await listener.stop()


async def test_a_leading_relay_of_the_process_is_woken_directly(
        fresh_db: tuple[RegistrySettings, AsyncEngine], stack: Stack) -> None:
    """With the leader in the writer's process no NOTIFY is sent at all, and the event goes out long before the
    relay's next poll (a minute away)."""
    settings, engine = fresh_db
    settings = settings.model_copy(update={"outbox_poll_interval_seconds": 60.0})
    sessionmaker = create_sessionmaker(engine)
    topic = f"test.wake.{uuid.uuid4().hex[:8]}"
    await create_topics(stack.broker.bootstrap_servers, [topic])
    relay = OutboxRelay(settings, "registry")
    task = asyncio.create_task(relay.run())
    listener = Notifications()
    await listener.start(settings.database_url)
    try:
        async def leads() -> bool:
            return relay.is_leader

        await eventually(leads, "the relay to lead", timeout=30, interval=0.1)
        await asyncio.sleep(0.5)  # the relay's first, empty fetch is over: it waits for a wake-up or its poll
        key = str(uuid.uuid4())
        async with sessionmaker() as session, session.begin():
            await enqueue(session, "registry", [(probe_event(key, 0), topic, key)])
        received = await read_topic(stack.broker.bootstrap_servers, topic, until=lambda rs: len(rs) >= 1,
                                    timeout=45)
        assert received[0].event is not None and received[0].event.subject == key
        assert await listener.receive() == []
    finally:
        relay.stop()
        await asyncio.wait_for(task, 30)
        await listener.stop()


async def test_pipelined_batches_keep_each_keys_order_and_publish_each_row_once(
        fresh_db: tuple[RegistrySettings, AsyncEngine], stack: Stack) -> None:
    """Small batches, written while the relay runs: each batch is fetched while the one before is marked, and the
    topic still holds every event once, each key's in the order written."""
    settings, engine = fresh_db
    settings = settings.model_copy(update={"outbox_batch_size": 7})
    sessionmaker = create_sessionmaker(engine)
    topic = f"test.pipeline.{uuid.uuid4().hex[:8]}"
    await create_topics(stack.broker.bootstrap_servers, [topic], partitions=3)
    keys = [str(uuid.uuid4()) for _ in range(3)]
    relay = OutboxRelay(settings, "registry")
    task = asyncio.create_task(relay.run())
    try:
        n = 0
        for _ in range(12):
            async with sessionmaker() as session, session.begin():
                entries = []
                for _ in range(25):
                    key = keys[n % len(keys)] if n % 5 else keys[0]  # one key gets most of them
                    entries.append((probe_event(key, n), topic, key))
                    n += 1
                await enqueue(session, "registry", entries)
        received = await read_settled(stack.broker.bootstrap_servers, topic, n)
        assert len(received) == n and len({r.event.id for r in received if r.event}) == n
        for key in keys:
            numbers = [r.event.data["n"] for r in received if r.event and r.event.subject == key]
            assert numbers == sorted(numbers) and numbers
        db = await asyncpg.connect(settings.database_url)
        try:
            async def all_marked() -> bool:
                return await db.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL") == 0

            await eventually(all_marked, "every batch to be marked sent", timeout=30, interval=0.1)
        finally:
            await db.close()
    finally:
        relay.stop()
        await asyncio.wait_for(task, 30)
