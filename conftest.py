"""Test session fixtures: one embedded PostgreSQL and one embedded broker for the whole run (real parts)."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy.ext.asyncio import AsyncSession

from deploy.local.embedded import EmbeddedBroker, EmbeddedPostgres, free_port
from services.household.app import create_app as create_household_app
from services.household.settings import HouseholdSettings
from services.referral.app import create_app as create_referral_app
from services.referral.settings import ReferralSettings
from services.registry.app import create_app as create_registry_app
from services.registry.settings import RegistrySettings
from shared.migrate import upgrade
from tests.support import tokens
from tests.support.database import rolled_back
from tests.support.waiting import eventually

ROOT = Path(__file__).resolve().parent


@dataclass
class Stack:
    pg: EmbeddedPostgres
    broker: EmbeddedBroker
    #: Per service, a database migrated to head once in this session, that the others are copied from.
    _templates: dict[str, str] = field(default_factory=dict)
    _migrating: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def create_database(self, name: str, *, template: str = "template1") -> str:
        conn = await asyncpg.connect(self.pg.dsn())
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        finally:
            await conn.close()
        return self.pg.dsn(name)

    async def migrated_database(self, service: str, name: str) -> str:
        """A new database at the head of the service's migrations. The history runs once per service and session
        (into a template nobody connects to); each database is a copy of it, which takes a fraction of the time."""
        async with self._migrating:
            if service not in self._templates:
                template = f"migrated_{service}"
                await asyncio.to_thread(upgrade, ROOT / "services" / service, await self.create_database(template))
                self._templates[service] = template
        return await self.create_database(name, template=self._templates[service])


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    # Not under pytest's tmp_path: pytest resets its base directory to 0700 whenever another session
    # starts, which would lock out the unprivileged user the server runs as.
    base = Path(tempfile.mkdtemp(prefix="posyandu-test-"))
    base.chmod(0o755)
    pg = EmbeddedPostgres(base / "pg")
    broker = EmbeddedBroker(free_port(), logfile=base / "broker.log")
    pg.start()
    broker.start()
    try:
        yield Stack(pg, broker)
    finally:
        broker.stop()
        pg.stop("immediate")
        shutil.rmtree(base, ignore_errors=True)


def service_settings(stack: Stack, database_url: str) -> dict[str, Any]:
    return {"environment": "test", "host": "127.0.0.1", "database_url": database_url,
            "kafka_bootstrap_servers": stack.broker.bootstrap_servers, "kafka_fetch_max_wait_ms": 10,
            "projection_fetch_max_wait_ms": 10,
            "outbox_poll_interval_seconds": 0.2, "log_level": "WARNING"}


@pytest.fixture(scope="session")
async def registry_settings(stack: Stack) -> RegistrySettings:
    dsn = await stack.migrated_database("registry", "registry")
    return RegistrySettings(**service_settings(stack, dsn))


@pytest.fixture(scope="session")
async def registry(registry_settings: RegistrySettings) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the registry app running in-process with its lifespan (relay included)."""
    app = create_registry_app(registry_settings)
    async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://registry") as client:
            response = await client.post(
                "/api/v1/regions/import", headers={**tokens.admin(), "Content-Type": "text/csv"},
                content=(ROOT / "services/registry/demo/regions.csv").read_bytes())
            assert response.status_code == 200, response.text
            yield client


@pytest.fixture
async def registry_db(registry_settings: RegistrySettings) -> AsyncIterator[asyncpg.Connection]:
    """A direct connection to the registry's database, to check what was (not) written."""
    conn = await asyncpg.connect(registry_settings.database_url)
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture(scope="session")
async def household_settings(stack: Stack) -> HouseholdSettings:
    dsn = await stack.migrated_database("household", "household")
    # The need sweep runs only when a test calls it (with the day it chooses), not from the background loop.
    return HouseholdSettings(**service_settings(stack, dsn), need_sweep_enabled=False)


@pytest.fixture(scope="session")
async def household_app(household_settings: HouseholdSettings, registry: httpx.AsyncClient) -> AsyncIterator[Any]:
    """The household app running in-process with its lifespan; it learns regions and posyandu from the registry."""
    app = create_household_app(household_settings)
    async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30) as manager:
        # The broker is memory-only and an earlier test may have restarted it: have the registry announce its
        # state again, so this late consumer learns every region whatever the test order.
        republished = await registry.post("/api/v1/registry/republish", headers=tokens.admin())
        assert republished.status_code == 200, republished.text
        await _until_regions_known(household_settings.database_url)
        yield manager.app


@pytest.fixture(scope="session")
async def household(household_app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the household app."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=household_app),
                                 base_url="http://household") as client:
        yield client


async def _until_regions_known(database_url: str, timeout: float = 90) -> None:
    """Wait until the household service has consumed the demo regions the registry fixture imported."""
    expected = sum(1 for _ in (ROOT / "services/registry/demo/regions.csv").open()) - 1
    conn = await asyncpg.connect(database_url)
    try:
        async def known() -> bool:
            return bool(await conn.fetchval("SELECT count(*) FROM known_regions") >= expected)

        await eventually(known, "the household service to learn the demo regions", timeout, interval=0.2)
    finally:
        await conn.close()


@pytest.fixture
async def household_db(household_settings: HouseholdSettings) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(household_settings.database_url)
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture(scope="session")
async def referral_settings(stack: Stack) -> ReferralSettings:
    dsn = await stack.migrated_database("referral", "referral")
    # The sweep runs only when a test calls it (with the time it chooses), not from the background loop.
    return ReferralSettings(**service_settings(stack, dsn), sla_sweep_interval_seconds=3600)


@pytest.fixture(scope="session")
async def referral(referral_settings: ReferralSettings, household_app: Any,
                   household: httpx.AsyncClient) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the referral app in-process, started after the registry and household it consumes; its calls
    to the household API go to the in-process household app."""
    app = create_referral_app(referral_settings, household_transport=httpx.ASGITransport(app=household_app))
    async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://referral") as client:
            yield client


@pytest.fixture
async def referral_db(referral_settings: ReferralSettings) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(referral_settings.database_url)
    try:
        yield conn
    finally:
        await conn.close()


# Service-level tests: a session whose writes, commits included, are rolled back after the test
# (tests/support/database.py). Reporting's is in services/reporting/tests/conftest.py, beside its settings.


@pytest.fixture
async def registry_session(registry_settings: RegistrySettings) -> AsyncIterator[AsyncSession]:
    async with rolled_back(registry_settings) as session:
        yield session


@pytest.fixture
async def household_session(household_settings: HouseholdSettings) -> AsyncIterator[AsyncSession]:
    async with rolled_back(household_settings) as session:
        yield session


@pytest.fixture
async def referral_session(referral_settings: ReferralSettings) -> AsyncIterator[AsyncSession]:
    async with rolled_back(referral_settings) as session:
        yield session
