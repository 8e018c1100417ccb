"""The reporting service in tests, two ways.

- The `reporting` fixtures: the app on a broker of its own, so that crafted streams never reach the other services'
  consumers, nor theirs this service's (the reporting tests and the fuzzing suite register them in their conftest).
- `private_reporting`: a reporting service of a test's own: its own database, in a consumer group of its own on the
  session's broker, so it reads the broker's whole history and moves nobody else's offsets (cross-service tests of
  what reporting counts).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from conftest import Stack, service_settings
from deploy.local.embedded import EmbeddedBroker, free_port
from deploy.local.stack import create_topics
from services.reporting.app import create_app
from services.reporting.app import spec as reporting_spec
from services.reporting.settings import ReportingSettings
from shared.events.topics import ALL_TOPICS
from shared.service import create_service_app


@dataclasses.dataclass
class Reporting:
    client: httpx.AsyncClient
    #: Its database's URL.
    db: str


@contextlib.asynccontextmanager
async def private_reporting(stack: Stack, *, database: str, group: str) -> AsyncIterator[Reporting]:
    dsn = await stack.migrated_database("reporting", database)
    await create_topics(stack.broker.bootstrap_servers, list(ALL_TOPICS))
    spec = reporting_spec()
    groups = [dataclasses.replace(sub, group_id=group) for sub in spec.subscriptions]
    app = create_service_app(dataclasses.replace(spec, subscriptions=groups),
                             ReportingSettings(**service_settings(stack, dsn)))
    async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30) as manager:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app),
                                     base_url="http://reporting") as client:
            yield Reporting(client, dsn)


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
