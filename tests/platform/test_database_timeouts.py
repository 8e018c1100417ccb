"""Bounded waits on the database (shared/db.py, shared/outbox.py): a statement past the command timeout fails as an
unavailable database and its connection is replaced; a pooled connection whose path went silent is given up within
the connect timeout (pinged when it sat idle, not when a request just returned it); and a relay leader cut off
silently loses the lead to a standby, because its session ends on the server."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import asyncpg
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from conftest import Stack, service_settings
from services.registry.settings import RegistrySettings
from shared import outbox
from shared.db import create_engine
from shared.errors import database_unavailable
from shared.outbox import OutboxRelay, relay_connection
from tests.support.netproxy import NetProxy
from tests.support.waiting import eventually


async def backend_pid(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(sa.text("SELECT pg_backend_pid()")))


@pytest.fixture
async def database(stack: Stack) -> str:
    """A migrated registry database of the test's own (the relay's lock is per database)."""
    return await stack.migrated_database("registry", f"timeouts_{uuid.uuid4().hex[:8]}")


@pytest.fixture
async def proxy(stack: Stack) -> AsyncIterator[NetProxy]:
    async with NetProxy(stack.pg.socket_dir / f".s.PGSQL.{stack.pg.port}") as proxy:
        yield proxy


def settings(stack: Stack, database_url: str, **overrides: object) -> RegistrySettings:
    return RegistrySettings(**{**service_settings(stack, database_url), **overrides})


def through(proxy: NetProxy, dsn: str) -> str:
    """The same database, reached through the proxy."""
    return f"postgresql://postgres@{proxy.address}{urlsplit(dsn).path}"


async def test_a_statement_past_the_command_timeout_is_unavailable_and_its_connection_replaced(
        stack: Stack, database: str) -> None:
    engine = create_engine(settings(stack, database, database_command_timeout_seconds=0.5))
    try:
        first = await backend_pid(engine)
        started = time.monotonic()
        with pytest.raises(TimeoutError) as raised:
            async with engine.connect() as conn:
                await conn.execute(sa.text("SELECT pg_sleep(10)"))
        assert time.monotonic() - started < 3
        assert database_unavailable(raised.value)  # a 503, and the consumer waits instead of spending attempts
        assert await backend_pid(engine) != first  # the timed-out connection was discarded, not pooled
    finally:
        await engine.dispose()


async def test_a_pooled_connection_on_a_silent_path_is_given_up_within_the_connect_timeout(
        stack: Stack, database: str, proxy: NetProxy) -> None:
    # A command timeout far beyond what the test waits: only the ping on checkout can give up in time.
    engine = create_engine(settings(stack, through(proxy, database), database_connect_timeout_seconds=1,
                                    database_command_timeout_seconds=60, database_ping_after_idle_seconds=0.2))
    try:
        before = await backend_pid(engine)
        await asyncio.sleep(0.3)  # idle past the ping threshold: the next checkout pings
        proxy.blackhole()
        started = time.monotonic()
        with pytest.raises(TimeoutError):  # the ping, then connecting anew, each within the connect timeout
            await backend_pid(engine)
        assert time.monotonic() - started < 5
        proxy.pass_through()
        assert await backend_pid(engine) != before
    finally:
        await engine.dispose()


async def test_a_connection_back_from_a_request_just_now_is_not_pinged_one_idle_longer_is(
        stack: Stack, database: str) -> None:
    """A ping on every checkout cost every request a round trip: only a connection idle past the threshold gets it."""
    engine = create_engine(settings(stack, database, database_ping_after_idle_seconds=0.5))
    seen: list[str] = []
    try:
        async with engine.connect() as conn:
            driver: asyncpg.Connection = (await conn.get_raw_connection()).driver_connection
            driver.add_query_logger(lambda record: seen.append(record.query))
        for _ in range(3):
            await backend_pid(engine)  # back in the pool a moment ago each time
        assert seen.count("SELECT 1") == 0, seen
        await asyncio.sleep(0.6)
        await backend_pid(engine)
        assert seen.count("SELECT 1") == 1, seen
    finally:
        await engine.dispose()


async def test_the_pool_hands_out_the_connection_returned_last(stack: Stack, database: str) -> None:
    """LIFO: under light load every request gets the connection just in use (no idle ping), not the oldest idle."""
    engine = create_engine(settings(stack, database))
    try:
        async with engine.connect() as first, engine.connect() as second:
            pids = {await first.scalar(sa.text("SELECT pg_backend_pid()")),
                    await second.scalar(sa.text("SELECT pg_backend_pid()"))}
        assert len(pids) == 2
        assert len({await backend_pid(engine) for _ in range(4)}) == 1
    finally:
        await engine.dispose()


async def test_the_connections_a_burst_opened_stay_in_the_pool(stack: Stack, database: str) -> None:
    """Sixteen concurrent requests (the bench's clients) open sixteen connections, and the pool keeps them all: the
    next burst reuses the same backends instead of paying new ones (and asyncpg's introspection) on every return."""
    engine = create_engine(settings(stack, database))
    try:
        async def hold(ready: asyncio.Barrier) -> int:
            async with engine.connect() as conn:
                pid = int(await conn.scalar(sa.text("SELECT pg_backend_pid()")))
                await ready.wait()
                return pid

        first = set(await asyncio.gather(*(hold(barrier) for barrier in [asyncio.Barrier(16)] * 16)))
        second = set(await asyncio.gather(*(hold(barrier) for barrier in [asyncio.Barrier(16)] * 16)))
        assert len(first) == 16
        assert second == first
    finally:
        await engine.dispose()


async def test_the_pool_holds_at_most_its_size_and_a_request_past_it_waits(stack: Stack, database: str) -> None:
    engine = create_engine(settings(stack, database, database_pool_size=2, database_pool_timeout_seconds=0.5))
    try:
        async with engine.connect(), engine.connect():
            with pytest.raises(sa.exc.TimeoutError):
                async with engine.connect():
                    pass
    finally:
        await engine.dispose()


async def leads(relay: OutboxRelay) -> bool:
    return relay.is_leader


async def test_a_relay_leader_cut_off_silently_loses_the_lead_to_a_standby(
        stack: Stack, database: str, proxy: NetProxy, monkeypatch: pytest.MonkeyPatch) -> None:
    # The relay's session ends after twice its longest idle wait: made 1 s here (the poll, the standby's retry, a
    # backoff and Kafka's request timeout are all at most 1 s), so the session goes after 2 s of silence.
    monkeypatch.setattr(outbox, "MAX_BACKOFF_SECONDS", 1.0)
    direct = settings(stack, database, kafka_request_timeout_ms=1000)
    # The leader's own timeouts are far longer than the test: only the server can end its session in time.
    cut_off = settings(stack, through(proxy, database), kafka_request_timeout_ms=1000,
                       database_command_timeout_seconds=60, database_connect_timeout_seconds=60)
    conn = await relay_connection(direct)
    try:
        assert await conn.fetchval("SHOW idle_session_timeout") == "2s"
    finally:
        await conn.close()

    leader, standby = OutboxRelay(cut_off, "registry"), OutboxRelay(direct, "registry")
    tasks = [asyncio.create_task(leader.run())]
    try:
        await eventually(lambda: leads(leader), "the first relay to lead", timeout=20)
        tasks.append(asyncio.create_task(standby.run()))
        await asyncio.sleep(1.5)
        assert leader.is_leader and not standby.is_leader
        proxy.blackhole()
        await eventually(lambda: leads(standby), "the standby to take the silent leader's lock", timeout=10)
    finally:
        for task in tasks:  # the cut-off relay may be stuck connecting into the hole: no graceful stop
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def test_the_relay_session_outlives_the_relays_longest_idle_wait(stack: Stack, database: str) -> None:
    conn: asyncpg.Connection = await relay_connection(settings(stack, database))  # defaults: Kafka's 15 s
    try:
        assert await conn.fetchval("SHOW idle_session_timeout") == "30s"
    finally:
        await conn.close()
