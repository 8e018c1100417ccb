"""The consumer runner: applies a redelivered event once, dead-letters poison records and keeps going, and waits for
an unavailable database without spending a record's attempts."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
import pytest
import sqlalchemy as sa
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from asyncpg.exceptions import CannotConnectNowError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from conftest import Stack, service_settings
from deploy.local.embedded import EmbeddedBroker, free_port
from services.household.app import SPEC as household
from services.referral.app import spec as referral
from services.referral.settings import ReferralSettings
from services.registry.settings import RegistrySettings
from services.reporting.app import spec as reporting
from shared.consumer import ConsumerRunner
from shared.db import create_engine, create_sessionmaker
from shared.events.envelope import CloudEvent
from shared.events.topics import dead_letter_topic
from shared.observability import CONSUMER_RECORDS
from tests.support.kafka import read_topic
from tests.support.waiting import eventually

EVENT_TYPE = "posyandu.probe.happened.v1"


@dataclass
class Probe:
    settings: RegistrySettings
    engine: AsyncEngine
    dsn: str
    topic: str
    group: str

    def runner(self, *, may_lag: bool = False) -> ConsumerRunner:
        async def apply(session: AsyncSession, event: CloudEvent) -> None:
            if event.data.get("explode"):
                raise ValueError("the handler cannot process this one")
            await session.execute(sa.text("INSERT INTO probe (event_id, n) VALUES (:id, :n)"),
                                  {"id": event.id, "n": event.data["n"]})

        return ConsumerRunner(self.settings, service="probe", group_id=self.group, topics=[self.topic],
                              handlers={EVENT_TYPE: apply}, sessionmaker=create_sessionmaker(self.engine),
                              may_lag=may_lag)

    async def applied(self) -> list[int]:
        conn = await asyncpg.connect(self.dsn)
        try:
            return [r["n"] for r in await conn.fetch("SELECT n FROM probe ORDER BY n")]
        finally:
            await conn.close()


@pytest.fixture
async def probe(stack: Stack) -> AsyncIterator[Probe]:
    name = f"consumer_{uuid.uuid4().hex[:8]}"
    dsn = await stack.migrated_database("registry", name)
    conn = await asyncpg.connect(dsn)
    # tx: the transaction that applied the event, to see which events were applied together.
    await conn.execute("CREATE TABLE probe (event_id uuid PRIMARY KEY, n int NOT NULL, "
                       "tx bigint NOT NULL DEFAULT txid_current())")
    await conn.close()
    settings = RegistrySettings(**{**service_settings(stack, dsn), "consumer_max_attempts": 2})
    engine = create_engine(settings)
    yield Probe(settings, engine, dsn, topic=f"test.consumer.{name}", group=f"probe-{name}")
    await engine.dispose()


def event(n: int, **extra: object) -> CloudEvent:
    return CloudEvent(source="/posyandu/registry", type=EVENT_TYPE, subject=f"probe-{n}", data={"n": n, **extra})


async def until_applied(probe: Probe, expected: list[int], timeout: float = 20) -> None:
    await eventually(probe.applied, f"the probe to apply {expected}", timeout, interval=0.1,
                     until=lambda got: got == expected)


def duplicates(group: str) -> float:
    return CONSUMER_RECORDS.labels("probe", group, "duplicate")._value.get()


async def transactions(probe: Probe, numbers: list[int]) -> int:
    conn = await asyncpg.connect(probe.dsn)
    try:
        return int(await conn.fetchval("SELECT count(DISTINCT tx) FROM probe WHERE n = ANY($1)", numbers))
    finally:
        await conn.close()


async def test_a_fetched_batch_is_applied_in_one_transaction_and_a_bad_record_spoils_nothing(
        probe: Probe, stack: Stack) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=stack.broker.bootstrap_servers)
    await producer.start()
    try:
        # Published before the runner starts, so that one fetch hands over all of them.
        first = [event(n) for n in range(1, 6)]
        for record in (*first, first[2]):  # the third one twice within the batch
            await producer.send_and_wait(probe.topic, record.to_bytes(), key=b"k")
        runner = probe.runner()
        task = asyncio.create_task(runner.run())
        try:
            await until_applied(probe, [1, 2, 3, 4, 5])
            assert await transactions(probe, [1, 2, 3, 4, 5]) == 1
            assert duplicates(probe.group) == 1
        finally:
            runner.stop()
            await task

        for record in (event(6), event(7, explode=True), event(8)):
            await producer.send_and_wait(probe.topic, record.to_bytes(), key=b"k")
        runner = probe.runner()
        task = asyncio.create_task(runner.run())
        try:
            # The batch failed as a whole; one record at a time, the good ones go in and the bad one is parked.
            await until_applied(probe, [1, 2, 3, 4, 5, 6, 8])
            assert await transactions(probe, [6, 8]) == 2
            dead = await read_topic(stack.broker.bootstrap_servers, dead_letter_topic(probe.group),
                                    until=lambda rs: len(rs) >= 1)
            assert [d.event.data["n"] for d in dead if d.event is not None] == [7]
        finally:
            runner.stop()
            await task
    finally:
        await producer.stop()


async def committed(probe: Probe, partitions: int) -> dict[int, int]:
    """The group's committed offset of each partition of the probe's topic (-1 where none is)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=probe.settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(
            probe.group, partitions=[TopicPartition(probe.topic, p) for p in range(partitions)])
    finally:
        await admin.close()
    return {tp.partition: (meta.offset if meta is not None else -1) for tp, meta in offsets.items()}


async def test_a_fetch_of_several_partitions_is_applied_in_one_transaction_and_a_bad_record_spoils_nothing(
        probe: Probe, stack: Stack) -> None:
    """The records of one fetch, whatever their partitions, go in one transaction (each partition's in its order);
    when one of them fails, every other is still applied exactly once, one per transaction, and the offsets are
    committed past all of them (the bad one parked in the dead-letter topic)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=stack.broker.bootstrap_servers)
    await admin.start()
    await admin.create_topics([NewTopic(probe.topic, 3, 1)])
    await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=stack.broker.bootstrap_servers)
    await producer.start()
    try:
        # Published before the runner starts, so that one fetch hands over all of them: two a partition.
        for n in range(1, 7):
            await producer.send_and_wait(probe.topic, event(n).to_bytes(), key=f"k{n}".encode(), partition=n % 3)
        runner = probe.runner()
        task = asyncio.create_task(runner.run())
        try:
            await until_applied(probe, [1, 2, 3, 4, 5, 6])
            assert await transactions(probe, [1, 2, 3, 4, 5, 6]) == 1
            await eventually(lambda: committed(probe, 3), "the offsets committed past the batch", 20,
                             interval=0.2, until=lambda got: got == {0: 2, 1: 2, 2: 2})
        finally:
            runner.stop()
            await task

        # The next fetch: one bad record in partition 1, good ones in all three.
        for n in range(7, 13):
            record = event(n, explode=True) if n == 10 else event(n)
            await producer.send_and_wait(probe.topic, record.to_bytes(), key=f"k{n}".encode(), partition=n % 3)
        runner = probe.runner()
        task = asyncio.create_task(runner.run())
        try:
            await until_applied(probe, [1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12])
            dead = await read_topic(stack.broker.bootstrap_servers, dead_letter_topic(probe.group),
                                    until=lambda rs: len(rs) >= 1)
            assert [d.event.data["n"] for d in dead if d.event is not None] == [10]
            await eventually(lambda: committed(probe, 3), "the offsets committed past the failed batch", 20,
                             interval=0.2, until=lambda got: got == {0: 4, 1: 4, 2: 4})
        finally:
            runner.stop()
            await task
        assert duplicates(probe.group) == 0
    finally:
        await producer.stop()
    conn = await asyncpg.connect(probe.dsn)
    try:
        # Once each: one inbox claim and one row per good event (the bad one's claim rolled back with it).
        assert await conn.fetchval("SELECT count(*) FROM inbox WHERE consumer_group = $1", probe.group) == 11
        assert await conn.fetchval("SELECT count(*) FROM probe") == 11
    finally:
        await conn.close()


@pytest.mark.parametrize("may_lag", [False, True], ids=["a-hop", "a-projection"])
async def test_a_projection_applies_events_that_arrive_one_by_one_in_rounds(probe: Probe, stack: Stack,
                                                                            may_lag: bool) -> None:
    """Events sent one at a time, 20 ms apart, to a live consumer: a subscription that may lag (reporting's) lets
    the broker gather them for its projection fetch wait and applies each round in one transaction; a hop of the
    referral loop applies them as they come."""
    probe.settings = probe.settings.model_copy(update={"projection_fetch_max_wait_ms": 1500})
    producer = AIOKafkaProducer(bootstrap_servers=stack.broker.bootstrap_servers)
    await producer.start()
    runner = probe.runner(may_lag=may_lag)
    task = asyncio.create_task(runner.run())
    try:
        await producer.send_and_wait(probe.topic, event(0).to_bytes(), key=b"k")
        await until_applied(probe, [0])  # the consumer is live: what follows arrives while it fetches
        numbers = list(range(1, 11))
        for n in numbers:
            await producer.send_and_wait(probe.topic, event(n).to_bytes(), key=b"k")
            await asyncio.sleep(0.02)
        await until_applied(probe, [0, *numbers])
        if may_lag:
            assert await transactions(probe, numbers) <= 2
        else:
            assert await transactions(probe, numbers) >= 5
    finally:
        await producer.stop()
        runner.stop()
        await task


async def test_redelivered_event_applies_once_and_poison_records_are_dead_lettered(probe: Probe,
                                                                                  stack: Stack) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=stack.broker.bootstrap_servers)
    await producer.start()
    runner = probe.runner()
    task = asyncio.create_task(runner.run())
    try:
        first = event(1)
        for record in (first, first, event(2)):  # the first one delivered twice
            await producer.send_and_wait(probe.topic, record.to_bytes(), key=b"k")
        await until_applied(probe, [1, 2])
        assert duplicates(probe.group) == 1

        await producer.send_and_wait(probe.topic, b"{this is not an event", key=b"k")
        await producer.send_and_wait(probe.topic, event(3, explode=True).to_bytes(), key=b"k")
        await producer.send_and_wait(probe.topic, event(4).to_bytes(), key=b"k")
        await until_applied(probe, [1, 2, 4])  # it kept going past both poison records

        dead = await read_topic(stack.broker.bootstrap_servers, dead_letter_topic(probe.group),
                                until=lambda rs: len(rs) >= 2)
        assert dead[0].record.value == b"{this is not an event"
        assert dead[0].headers["dlq_error"].startswith(b"malformed event")
        assert dead[0].headers["dlq_topic"] == probe.topic.encode()
        assert dead[1].event is not None and dead[1].event.data["n"] == 3
        assert dead[1].headers["dlq_error"].startswith(b"ValueError: the handler cannot process")
    finally:
        runner.stop()
        await task

    # A new runner of the same group starts after the committed offsets: nothing is read twice.
    runner = probe.runner()
    task = asyncio.create_task(runner.run())
    try:
        await producer.send_and_wait(probe.topic, event(5).to_bytes(), key=b"k")
        await until_applied(probe, [1, 2, 4, 5])
        assert duplicates(probe.group) == 1
    finally:
        runner.stop()
        await task
        await producer.stop()
    conn = await asyncpg.connect(probe.dsn)
    try:
        assert await conn.fetchval("SELECT count(*) FROM inbox WHERE consumer_group = $1", probe.group) == 4
    finally:
        await conn.close()


async def test_the_consumer_carries_on_after_the_broker_restarts_with_fewer_partitions(probe: Probe) -> None:
    """A memory-only broker restarts empty and the topic comes back with one partition instead of three: the
    runner rejoins and applies what is published next. (The bounded commit in ConsumerRunner guards the case,
    seen once in a full run, where aiokafka retried a commit for a vanished partition forever.)"""
    broker = EmbeddedBroker(free_port())
    broker.start()
    probe.settings = probe.settings.model_copy(update={"kafka_bootstrap_servers": broker.bootstrap_servers})
    runner = probe.runner()
    task = asyncio.create_task(runner.run())
    admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap_servers)
    try:
        await admin.start()
        await admin.create_topics([NewTopic(probe.topic, 3, 1)])
        await admin.close()
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap_servers)
        await producer.start()
        for n in range(1, 7):  # keys spread over the three partitions
            await producer.send_and_wait(probe.topic, event(n).to_bytes(), key=f"k{n}".encode())
        await producer.stop()
        await until_applied(probe, [1, 2, 3, 4, 5, 6], timeout=60)

        broker.stop()
        broker.start()  # empty again: the topic comes back with a single partition
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap_servers)
        await producer.start()
        await producer.send_and_wait(probe.topic, event(7).to_bytes(), key=b"k7")
        await producer.stop()
        await until_applied(probe, [1, 2, 3, 4, 5, 6, 7], timeout=120)
    finally:
        runner.stop()
        await asyncio.wait_for(task, 60)
        broker.stop()


async def test_a_database_starting_up_spends_no_attempts(probe: Probe, stack: Stack) -> None:
    """Connecting while PostgreSQL starts up fails with 57P03 on a fresh connection (nothing is invalidated): the
    runner must wait for the database as for any unavailable one, not count it against the record and dead-letter
    a valid event (here after more failures than CONSUMER_MAX_ATTEMPTS allows)."""
    failures = 3
    assert failures > probe.settings.consumer_max_attempts

    async def apply(session: AsyncSession, event: CloudEvent) -> None:
        nonlocal failures
        if failures:
            failures -= 1
            raise DBAPIError("connect", None, CannotConnectNowError("the database system is starting up"))
        await session.execute(sa.text("INSERT INTO probe (event_id, n) VALUES (:id, :n)"),
                              {"id": event.id, "n": event.data["n"]})

    runner = ConsumerRunner(probe.settings, service="probe", group_id=probe.group, topics=[probe.topic],
                            handlers={EVENT_TYPE: apply}, sessionmaker=create_sessionmaker(probe.engine))
    task = asyncio.create_task(runner.run())
    producer = AIOKafkaProducer(bootstrap_servers=stack.broker.bootstrap_servers)
    await producer.start()
    try:
        await producer.send_and_wait(probe.topic, event(1).to_bytes(), key=b"k")
        await until_applied(probe, [1])
        assert failures == 0
        assert CONSUMER_RECORDS.labels("probe", probe.group, "dead-lettered")._value.get() == 0
    finally:
        await producer.stop()
        runner.stop()
        await task


def test_reporting_is_a_projection_that_fetches_in_rounds_and_the_referral_loop_is_not() -> None:
    """Reporting's lag costs only freshness, so it lets the broker gather a round of events (shared/consumer.py);
    the household and referral services' groups carry the referral loop's hops and fetch at once."""
    assert [sub.may_lag for sub in reporting().subscriptions] == [True]
    assert not any(sub.may_lag for sub in (*household.subscriptions, *referral(ReferralSettings()).subscriptions))
