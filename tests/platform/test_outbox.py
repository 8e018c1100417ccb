"""The outbox relay: events reach the broker, survive its outage in order, a standby relay takes over, and a broker
that lost its data gets every kept event back."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
import yaml
from sqlalchemy.ext.asyncio import AsyncEngine

from conftest import ROOT, Stack, service_settings
from deploy.local.embedded import EmbeddedBroker, free_port
from deploy.local.stack import create_topics
from services.registry.settings import RegistrySettings
from shared import outbox
from shared.db import create_engine, create_sessionmaker
from shared.events.topics import HOUSEHOLD_TOPIC, REFERRAL_TOPICS, REGISTRY_TOPIC, RETENTION_DAYS, SpmField
from shared.outbox import OutboxRelay, enqueue
from shared.retention import delete_expired_outbox
from tests.support import tokens
from tests.support.factories import create_posyandu
from tests.support.kafka import Received, events_about, read_topic
from tests.support.outbox import probe_event, read_settled
from tests.support.waiting import eventually


async def test_changes_made_while_the_broker_is_down_are_delivered_in_order(
        registry: httpx.AsyncClient, registry_db: asyncpg.Connection, stack: Stack) -> None:
    posyandu = await create_posyandu(registry)
    url = f"/api/v1/posyandu/{posyandu['id']}"
    stack.broker.stop()
    try:
        for n in range(1, 6):
            response = await registry.patch(url, json={"name": f"Posyandu Ronde {n}"}, headers=tokens.admin())
            assert response.status_code == 200
        pending = await registry_db.fetchval(
            "SELECT count(*) FROM outbox WHERE key = $1 AND published_at IS NULL", posyandu["id"])
        assert pending >= 5
    finally:
        stack.broker.start()

    received = await read_topic(stack.broker.bootstrap_servers, "posyandu.registry.v1", timeout=60,
                                until=lambda rs: len({e.id for e in events_about(rs, posyandu["id"])
                                                      if e.type.endswith("updated.v1")}) >= 5)
    updates = [e for e in events_about(received, posyandu["id"]) if e.type.endswith("updated.v1")]
    unique = list({e.id: e for e in updates}.values())
    assert [e.data["name"] for e in unique] == [f"Posyandu Ronde {n}" for n in range(1, 6)]
    assert [e.data["version"] for e in unique] == [2, 3, 4, 5, 6]

    async def all_published() -> bool:
        return await registry_db.fetchval(
            "SELECT count(*) FROM outbox WHERE key = $1 AND published_at IS NULL", posyandu["id"]) == 0

    await eventually(all_published, "the relay to publish the posyandu's events", timeout=20, interval=0.1)


@pytest.fixture
async def relay_db(stack: Stack) -> AsyncIterator[tuple[RegistrySettings, AsyncEngine]]:
    dsn = await stack.migrated_database("registry", f"relay_{uuid.uuid4().hex[:8]}")
    settings = RegistrySettings(**service_settings(stack, dsn))
    engine = create_engine(settings)
    yield settings, engine
    await engine.dispose()


async def test_one_relay_leads_and_a_standby_takes_over(relay_db: tuple[RegistrySettings, AsyncEngine],
                                                         stack: Stack) -> None:
    settings, engine = relay_db
    sessionmaker = create_sessionmaker(engine)
    topic = f"test.relay.{uuid.uuid4().hex[:8]}"
    key = str(uuid.uuid4())
    relays = [OutboxRelay(settings, "registry"), OutboxRelay(settings, "registry")]
    tasks = [asyncio.create_task(r.run()) for r in relays]
    try:
        async def one_leader() -> bool:
            return sum(r.is_leader for r in relays) == 1

        await eventually(one_leader, "one relay of the two to lead", timeout=20, interval=0.1)
        async with sessionmaker() as session, session.begin():
            await enqueue(session, "registry", [(probe_event(key, n), topic, key) for n in range(50)])

        first = await read_topic(stack.broker.bootstrap_servers, topic, until=lambda rs: len(rs) >= 50)
        assert [r.event.data["n"] for r in first if r.event] == list(range(50))  # one key: in order

        leader = next(i for i, r in enumerate(relays) if r.is_leader)
        relays[leader].stop()
        await tasks[leader]
        standby = relays[1 - leader]

        async def standby_leads() -> bool:
            return standby.is_leader

        await eventually(standby_leads, "the standby to lead", timeout=20, interval=0.1)
        async with sessionmaker() as session, session.begin():
            await enqueue(session, "registry", [(probe_event(key, 50), topic, key)])
        everything = await read_topic(stack.broker.bootstrap_servers, topic, until=lambda rs: len(rs) >= 51)
        assert [r.event.data["n"] for r in everything if r.event] == list(range(51))
    finally:
        for relay in relays:
            relay.stop()
        await asyncio.gather(*tasks, return_exceptions=True)


@pytest.fixture
async def own_broker() -> AsyncIterator[EmbeddedBroker]:
    """A broker of this test's own: it is restarted (losing everything), and only this test's relay writes to it."""
    broker = EmbeddedBroker(free_port())
    await asyncio.to_thread(broker.start)
    try:
        yield broker
    finally:
        await asyncio.to_thread(broker.stop)


async def restart_empty(broker: EmbeddedBroker) -> None:
    """Stop the memory-only broker and start a fresh one on the same port: every topic and record is gone."""
    await asyncio.to_thread(broker.stop)
    await asyncio.to_thread(broker.start)


class RelayUnderTest:
    """One relay at a time on the test's database, started and stopped as the test says."""

    def __init__(self, settings: RegistrySettings) -> None:
        self.settings = settings
        self.relay: OutboxRelay | None = None
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.relay = OutboxRelay(self.settings, "registry")
        self.task = asyncio.create_task(self.relay.run())
        relay = self.relay

        async def leads() -> bool:
            return relay.is_leader

        await eventually(leads, "the relay to lead", timeout=20, interval=0.1)

    async def stop(self) -> None:
        if self.relay is not None and self.task is not None:
            self.relay.stop()
            await asyncio.wait_for(self.task, 30)
        self.relay = self.task = None


async def test_a_broker_that_lost_its_data_gets_every_sent_event_back_once_in_order(
        relay_db: tuple[RegistrySettings, AsyncEngine], own_broker: EmbeddedBroker,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The relay records the end offsets the broker acknowledged. A relay that starts leading on an intact broker
    sends nothing again; one that starts on a broker that lost everything (a memory-only broker restarted while no
    relay led), or that checks a broker that lost everything while it led, first sends every kept row again, in
    outbox order, with its event id, key and headers, so each topic ends with each event exactly once and each
    key's events in order."""
    monkeypatch.setattr(outbox, "BROKER_CHECK_SECONDS", 1.0)
    settings, engine = relay_db
    settings = settings.model_copy(update={"kafka_bootstrap_servers": own_broker.bootstrap_servers})
    sessionmaker = create_sessionmaker(engine)
    topic = f"test.resend.{uuid.uuid4().hex[:8]}"
    await create_topics(own_broker.bootstrap_servers, [topic], partitions=3)
    keys = [str(uuid.uuid4()) for _ in range(6)]
    written: list[tuple[str, int]] = []  # (key, n) in commit order

    async def write(count: int) -> None:
        for _ in range(count):
            key, n = keys[len(written) % len(keys)], len(written)
            async with sessionmaker() as session, session.begin():
                await enqueue(session, "registry", [(probe_event(key, n), topic, key)])
            written.append((key, n))

    async def everything_on_the_topic_once() -> list[Received]:
        """Read the topic until every written event is there; it must hold each exactly once, in order per key."""
        received = await read_settled(own_broker.bootstrap_servers, topic, len(written))
        assert len(received) == len(written), "an event is on the topic twice"
        for key in keys:
            assert [r.event.data["n"] for r in received if r.event and r.event.subject == key] == [
                n for k, n in written if k == key]
        return received

    relay = RelayUnderTest(settings)
    db = await asyncpg.connect(settings.database_url)
    try:
        await relay.start()
        await write(40)
        first = await everything_on_the_topic_once()
        sent = {row["event_id"]: row for row in await db.fetch("SELECT event_id, key, event_type FROM outbox")}
        for r in first:  # the outbox's ids, keys and headers, which a resend must repeat
            assert r.event is not None and r.event.id in sent
            assert r.record.key == sent[r.event.id]["key"].encode()
            assert r.headers["ce_id"] == str(r.event.id).encode()
        assert await db.fetchval("SELECT count(*) FROM outbox_offsets WHERE topic = $1", topic) == len(
            {r.record.partition for r in first})  # a recorded end offset per partition written to

        # A new leader on an intact broker: nothing is sent again, the next event follows the others.
        await relay.stop()
        await relay.start()
        await write(1)
        await everything_on_the_topic_once()

        # Lost while no relay led: the new leader gives the history back without waiting for a new event.
        await relay.stop()
        await restart_empty(own_broker)
        await relay.start()
        back = await everything_on_the_topic_once()
        assert {r.event.id for r in back if r.event} == {r["event_id"] for r in await db.fetch(
            "SELECT event_id FROM outbox")}
        for r in back:
            assert r.event is not None and r.record.key == r.event.subject.encode()
            assert r.headers["ce_id"] == str(r.event.id).encode()

        # Lost while the relay leads and idles: its next check gives the history back, before the next events.
        await restart_empty(own_broker)
        await asyncio.sleep(2 * outbox.BROKER_CHECK_SECONDS)
        await write(3)
        await everything_on_the_topic_once()
        assert await db.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL") == 0
    finally:
        await relay.stop()
        await db.close()


async def test_sent_rows_are_kept_as_long_as_their_topic_keeps_records(
        relay_db: tuple[RegistrySettings, AsyncEngine]) -> None:
    settings, _ = relay_db
    sosial = REFERRAL_TOPICS[SpmField.SOSIAL]
    # (topic, sent this many days ago or None: not sent yet, written 400 days ago), and whether the purge keeps it
    rows = [(REGISTRY_TOPIC, 4000, True), (HOUSEHOLD_TOPIC, 29, True), (HOUSEHOLD_TOPIC, 31, False),
            (sosial, 364, True), (sosial, 366, False), ("test.unknown.v1", 4000, True), (HOUSEHOLD_TOPIC, None, True)]
    db = await asyncpg.connect(settings.database_url)
    try:
        ids = []
        for topic, days, _ in rows:
            ids.append(await db.fetchval(
                "INSERT INTO outbox (event_id, event_type, topic, key, payload, created_at, published_at) "
                "VALUES ($1, 'posyandu.probe.published.v1', $2, 'k', '\\x00', now() - interval '400 days', "
                "now() - make_interval(days => $3)) RETURNING id", uuid.uuid4(), topic, days))

        async def kept() -> list[bool]:
            left = {r["id"] for r in await db.fetch("SELECT id FROM outbox")}
            return [i in left for i in ids]

        assert await delete_expired_outbox(db, settings, "registry") == 2
        assert await kept() == [keep for *_, keep in rows]
        # OUTBOX_RETENTION_DAYS, when set, applies to every topic; a row not sent yet is never purged.
        assert await delete_expired_outbox(db, settings.model_copy(update={"outbox_retention_days": 100}),
                                           "registry") == 3
        assert await kept() == [False, True, False, False, False, False, True]
    finally:
        await db.close()


def test_the_outbox_keeps_each_topic_as_long_as_kafka_does() -> None:
    """RETENTION_DAYS mirrors the KafkaTopics' retention.ms (-1: forever): the outbox can give back what Kafka keeps."""
    documents = yaml.safe_load_all((ROOT / "deploy/k8s/base/kafka/topics.yaml").read_text())
    retention = {d["metadata"]["name"]: int(d["spec"]["config"]["retention.ms"]) for d in documents if d}
    for topic, days in RETENTION_DAYS.items():
        assert retention[topic] == (-1 if days is None else days * 86_400_000), topic
