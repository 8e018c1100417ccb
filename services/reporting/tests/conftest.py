"""Reporting test fixtures: a broker of its own (crafted streams must not reach the other services' consumers,
nor theirs this service's), the reporting app on it, and the Maluku stream every module reads."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from conftest import Stack, service_settings
from deploy.local.embedded import EmbeddedBroker, free_port
from deploy.local.stack import create_topics
from services.reporting.app import create_app
from services.reporting.settings import ReportingSettings
from services.reporting.tests import scenario
from services.reporting.tests.factories import publish, until_consumed
from shared.events.topics import ALL_TOPICS


@pytest.fixture(scope="session")
def reporting_broker() -> Iterator[EmbeddedBroker]:
    broker = EmbeddedBroker(free_port())
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture(scope="session")
async def reporting_settings(stack: Stack, reporting_broker: EmbeddedBroker) -> ReportingSettings:
    dsn = await stack.migrated_database("reporting", "reporting")
    await create_topics(reporting_broker.bootstrap_servers, list(ALL_TOPICS))
    return ReportingSettings(**{**service_settings(stack, dsn),
                                "kafka_bootstrap_servers": reporting_broker.bootstrap_servers})


@pytest.fixture(scope="session")
async def reporting_app(reporting_settings: ReportingSettings) -> AsyncIterator[Any]:
    app = create_app(reporting_settings)
    async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30) as manager:
        yield manager.app


@pytest.fixture(scope="session")
async def reporting(reporting_app: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=reporting_app),
                                 base_url="http://reporting") as client:
        yield client


@dataclass
class Published:
    world: scenario.Maluku
    period: str


@pytest.fixture(scope="session")
async def maluku(reporting: httpx.AsyncClient, reporting_settings: ReportingSettings) -> Published:
    """The Maluku stream, published shuffled and with every fourth event twice, and consumed."""
    world = scenario.build()
    events = list(world.stream.events)
    random.Random(7).shuffle(events)
    events += events[::4]
    await publish(reporting_settings.kafka_bootstrap_servers, events)
    await until_consumed(reporting_settings.database_url, events)
    return Published(world, world.period)
