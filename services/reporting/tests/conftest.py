"""Reporting test fixtures: the reporting app on a broker of its own (tests/support/reporting.py), the Maluku
stream every module reads, and the rolled-back session of service-level tests (tests/support/database.py)."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from services.reporting.settings import ReportingSettings
from services.reporting.tests import scenario
from services.reporting.tests.factories import publish, until_consumed
from tests.support.database import rolled_back
from tests.support.reporting import (  # noqa: F401  (fixtures: imported to register them here)
    reporting,
    reporting_app,
    reporting_broker,
    reporting_settings,
)


@dataclass
class Published:
    world: scenario.Maluku
    period: str


@pytest.fixture(scope="session")
async def maluku(reporting: httpx.AsyncClient,  # noqa: F811  (fixtures by name)
                 reporting_settings: ReportingSettings) -> Published:  # noqa: F811
    """The Maluku stream, published shuffled and with every fourth event twice, and consumed."""
    world = scenario.build()
    events = list(world.stream.events)
    random.Random(7).shuffle(events)
    events += events[::4]
    await publish(reporting_settings.kafka_bootstrap_servers, events)
    await until_consumed(reporting_settings.database_url, events)
    return Published(world, world.period)


@pytest.fixture
async def reporting_session(reporting_settings: ReportingSettings) -> AsyncIterator[AsyncSession]:  # noqa: F811
    """A session whose writes, commits included, are rolled back after the test (tests/support/database.py)."""
    async with rolled_back(reporting_settings) as session:
        yield session
