"""The outbox relay: events reach the broker, survive its outage in order, and a standby relay takes over."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
import httpx
import pytest
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncEngine

from conftest import Stack, service_settings
from services.registry.settings import RegistrySettings
from services.registry.tests.factories import create_posyandu
from shared.db import create_engine, create_sessionmaker
from shared.events.envelope import CloudEvent
from shared.outbox import OutboxRelay, enqueue
from tests.support import tokens
from tests.support.kafka import events_about, read_topic


async def wait_for(condition: Callable[[], Awaitable[bool]], timeout: float = 20.0, interval: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(interval)


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

    await wait_for(all_published)


class ProbeData(BaseModel):
    n: int


def probe_event(topic_key: str, n: int) -> CloudEvent:
    return CloudEvent(source="/posyandu/registry", type="posyandu.probe.published.v1", subject=topic_key,
                      data=ProbeData(n=n).model_dump())


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

        await wait_for(one_leader)
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

        await wait_for(standby_leads)
        async with sessionmaker() as session, session.begin():
            await enqueue(session, "registry", [(probe_event(key, 50), topic, key)])
        everything = await read_topic(stack.broker.bootstrap_servers, topic, until=lambda rs: len(rs) >= 51)
        assert [r.event.data["n"] for r in everything if r.event] == list(range(51))
    finally:
        for relay in relays:
            relay.stop()
        await asyncio.gather(*tasks, return_exceptions=True)
