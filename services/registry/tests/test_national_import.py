"""The full national region list (91,599 rows) imports in one call; re-import is idempotent.

Runs against its own database so that the renames and retirements here touch no other test.
"""

from __future__ import annotations

import csv
import os
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager

from conftest import Stack, service_settings
from deploy.local.embedded import EmbeddedBroker, free_port
from services.registry.app import create_app
from services.registry.demo import demo_regions
from services.registry.settings import RegistrySettings
from tests.support import tokens
from tests.support.kafka import Received, read_topic

WILAYAH = Path(os.environ.get("WILAYAH_CSV", Path(__file__).resolve().parents[4] / "shared/data/wilayah.csv"))
pytestmark = pytest.mark.skipif(not WILAYAH.exists(), reason=f"the official list is not at {WILAYAH}")


@pytest.fixture(scope="module")
def national_broker() -> Iterator[EmbeddedBroker]:
    """A broker of its own: 91,599 region events would otherwise flood the other tests' consumers."""
    broker = EmbeddedBroker(free_port())
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture(scope="module")
async def national(stack: Stack, national_broker: EmbeddedBroker) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    dsn = await stack.migrated_database("registry", "registry_national")
    settings = {**service_settings(stack, dsn), "kafka_bootstrap_servers": national_broker.bootstrap_servers}
    app = create_app(RegistrySettings(**settings))
    async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30) as manager:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://registry",
                                     timeout=300) as client:
            yield client, dsn


def _import(client: httpx.AsyncClient, content: bytes | str, **params: str) -> Awaitable[httpx.Response]:
    return client.post("/api/v1/regions/import", content=content, params=params,
                       headers={**tokens.admin(), "Content-Type": "text/csv"})


async def test_the_demo_regions_are_official(national: tuple[httpx.AsyncClient, str]) -> None:
    lines = WILAYAH.read_text(encoding="utf-8").splitlines()
    official = {row["kode"].replace(".", ""): row["nama"] for row in csv.DictReader(lines)}
    for code, name in demo_regions():
        assert official.get(code) == name, code


async def test_national_list_imports_and_reimports_idempotently(national: tuple[httpx.AsyncClient, str]) -> None:
    client, dsn = national
    first = await _import(client, WILAYAH.read_bytes())
    assert first.status_code == 200, first.text
    report = first.json()
    assert (report["received"], report["registered"], report["renamed"]) == (91_599, 91_599, 0)

    conn = await asyncpg.connect(dsn)
    try:
        levels = Counter({r["level"]: r["n"] for r in await conn.fetch(
            "SELECT level, count(*) AS n FROM regions GROUP BY level")})
        assert levels == Counter(province=38, regency=514, district=7_285, village=83_762)
        kinds = {r["kind"]: r["n"] for r in await conn.fetch(
            "SELECT kind, count(*) AS n FROM regions WHERE level = 'village' GROUP BY kind")}
        assert kinds["desa-adat"] == 14 and sum(kinds.values()) == 83_762
        assert await conn.fetchval("SELECT count(*) FROM outbox WHERE event_type = 'posyandu.region.registered.v1'") \
            == 91_599

        again = (await _import(client, WILAYAH.read_bytes())).json()
        assert (again["registered"], again["renamed"], again["retired"], again["unchanged"]) == (0, 0, 0, 91_599)
        assert await conn.fetchval("SELECT count(*) FROM regions") == 91_599
        assert await conn.fetchval("SELECT count(*) FROM outbox") == 91_599
    finally:
        await conn.close()


async def test_a_newer_list_renames_and_retires(national: tuple[httpx.AsyncClient, str],
                                                national_broker: EmbeddedBroker) -> None:
    client, _ = national
    text = WILAYAH.read_text(encoding="utf-8")
    renamed = text.replace("31.71.01.1001,Gambir\n", "31.71.01.1001,Gambir Baru\n")
    # A newer list without one village: a full import retires it (kept, flagged, never deleted).
    newer = "\n".join(line for line in renamed.splitlines() if not line.startswith("76.02.01.1002,")) + "\n"
    report = (await _import(client, newer, list_version="kepmendagri-next", full="true")).json()
    assert (report["renamed"], report["retired"], report["registered"]) == (1, 1, 0)
    gambir = (await client.get("/api/v1/regions/3171011001", headers=tokens.admin())).json()
    assert (gambir["name"], gambir["list_version"]) == ("Gambir Baru", "kepmendagri-next")
    retired = (await client.get("/api/v1/regions/7602011002", headers=tokens.admin())).json()
    assert retired["retired"] is True

    def seen(rs: list[Received], event_type: str, subject: str) -> bool:
        return any(r.event and r.event.type == event_type and r.event.subject == subject for r in rs)

    # The two events travel on different partitions: wait for both.
    received = await read_topic(national_broker.bootstrap_servers, "posyandu.registry.v1", timeout=90,
                                until=lambda rs: seen(rs, "posyandu.region.retired.v1", "7602011002")
                                and seen(rs, "posyandu.region.renamed.v1", "3171011001"))
    renames = [r.event for r in received if r.event and r.event.type == "posyandu.region.renamed.v1"
               and r.event.subject == "3171011001"]
    assert renames and renames[-1].data["name"] == "Gambir Baru" and renames[-1].regioncode == "3171011001"

    # Importing the original list again brings the village back and restores the name.
    back = (await _import(client, WILAYAH.read_bytes(), full="true")).json()
    assert (back["registered"], back["renamed"], back["retired"]) == (1, 1, 0)
