"""`python -m services.reporting rebuild` drops the projections and replays the topics to the same result."""

from __future__ import annotations

import asyncio
import os
import random
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager

from conftest import Stack, service_settings
from deploy.local.embedded import EmbeddedBroker, free_port
from deploy.local.stack import create_topics
from services.reporting.app import create_app
from services.reporting.settings import ReportingSettings
from services.reporting.tables import PROJECTIONS
from services.reporting.tests import scenario, spm_scenario
from services.reporting.tests.factories import publish, until_consumed
from shared.events.topics import ALL_TOPICS
from tests.support import tokens

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def rebuild_broker() -> Iterator[EmbeddedBroker]:
    """A broker of its own: the replay reads every topic from the beginning and must find only this stream."""
    broker = EmbeddedBroker(free_port())
    broker.start()
    yield broker
    broker.stop()


async def snapshot(database_url: str) -> dict[str, list[Any]]:
    conn = await asyncpg.connect(database_url)
    try:
        return {table: sorted(tuple(map(str, r)) for r in await conn.fetch(f"SELECT * FROM {table}"))
                for table in PROJECTIONS}
    finally:
        await conn.close()


async def test_rebuild_replays_to_the_same_projections(stack: Stack, rebuild_broker: EmbeddedBroker) -> None:
    dsn = await stack.migrated_database("reporting", "reporting_rebuild")
    await create_topics(rebuild_broker.bootstrap_servers, list(ALL_TOPICS))
    settings = ReportingSettings(**{**service_settings(stack, dsn),
                                    "kafka_bootstrap_servers": rebuild_broker.bootstrap_servers})
    world = scenario.build()
    spm_scenario.add_inputs(world.stream, agency_id=world.agencies["kesehatan-8101"], region="8101", year=2026)
    events = list(world.stream.events)
    random.Random(11).shuffle(events)
    events += events[::3]
    app = create_app(settings)
    async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30) as manager:
        await publish(rebuild_broker.bootstrap_servers, events)
        await until_consumed(dsn, events)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://r") as client:
            params = {"region": "81", "period": world.period, "by": "village"}
            before_api = (await client.get("/api/v1/indicators", params=params, headers=tokens.admin())).json()
            before = await snapshot(dsn)
            assert len(before["households"]) == 11 and len(before["referrals"]) == 8
            assert [len(before[t]) for t in ("spm_programmes", "spm_realisations", "spm_target_figures")] == [1, 2, 1]
            # Damage the projections: the rebuild must not depend on what is there.
            conn = await asyncpg.connect(dsn)
            await conn.execute("DELETE FROM households WHERE village_code = $1", scenario.TAMILOUW)
            await conn.execute("UPDATE referrals SET status = 'cancelled'")
            await conn.execute("DELETE FROM spm_realisations")
            await conn.close()

            env = {**os.environ, "DATABASE_URL": dsn, "KAFKA_BOOTSTRAP_SERVERS": rebuild_broker.bootstrap_servers,
                   "KAFKA_FETCH_MAX_WAIT_MS": "10", "ENVIRONMENT": "test", "LOG_LEVEL": "WARNING",
                   "PYTHONPATH": str(ROOT)}
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "services.reporting", "rebuild", cwd=ROOT, env=env,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
            out, err = await asyncio.wait_for(process.communicate(), 120)
            assert process.returncode == 0, err.decode()
            assert f"projections rebuilt from {len(world.stream.events)} events" in out.decode()

            assert await snapshot(dsn) == before
            after_api = (await client.get("/api/v1/indicators", params=params, headers=tokens.admin())).json()
            assert after_api == before_api
