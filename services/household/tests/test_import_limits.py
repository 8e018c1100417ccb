"""The bulk import's bounds: a body limit of its own (HOUSEHOLD_IMPORT_MAX_BYTES, counted as the body streams), at
most HOUSEHOLD_IMPORT_MAX_CONCURRENT imports at once (one more is a 503 to retry), and an import that keeps yielding
the event loop, so that the process goes on answering everyone else while it parses."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager

from services.household.app import spec
from services.household.imports.endpoints import SLOTS
from services.household.settings import HouseholdSettings
from services.household.tests.factories import NDJSON, URL, family, kk_number, known_posyandu, ndjson
from shared.service import create_service_app
from tests.support import tokens
from tests.support.loop import loop_gaps

#: A row the parser refuses by itself (no KK number): it never waits on the database.
UNREADY_ROW = json.dumps({"name": "a row without its kk_number", "sex": "female"}).encode() + b"\n"


@pytest.fixture
async def small_limit(household_settings: HouseholdSettings, household_app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """The household app configured with a 64 KiB import limit, on the same database; without its consumers (the
    session's app consumes for the group), since this one only takes imports."""
    settings = household_settings.model_copy(update={"household_import_max_bytes": 64 * 1024})
    app = create_service_app(dataclasses.replace(spec(settings), subscriptions=()), settings)
    async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30) as manager:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app),
                                     base_url="http://household") as client:
            yield client


def test_the_default_limit_and_concurrency() -> None:
    settings = HouseholdSettings()
    assert settings.household_import_max_bytes == 50 * 1024 * 1024
    assert settings.household_import_max_concurrent == 2
    assert spec(settings).body_limits[URL] == 50 * 1024 * 1024


async def test_a_body_over_the_limit_is_413_and_imports_nothing(
        small_limit: httpx.AsyncClient, registry: httpx.AsyncClient, household_db: asyncpg.Connection) -> None:
    posyandu = await known_posyandu(registry, household_db)
    first = family(posyandu)  # valid, and parsed (even registered, in the transaction) before the limit is reached
    body = ndjson(first) + UNREADY_ROW * (100 * 1024 // len(UNREADY_ROW))

    async def streamed() -> AsyncIterator[bytes]:  # no Content-Length: counted as it arrives
        for start in range(0, len(body), 8 * 1024):
            yield body[start:start + 8 * 1024]

    for content in (streamed(), body):
        response = await small_limit.post(URL, content=content,
                                          headers={**tokens.admin(), "Content-Type": NDJSON})
        assert response.status_code == 413, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["type"].endswith("/payload-too-large")
    assert await household_db.fetchval("SELECT count(*) FROM households WHERE kk_number = $1",
                                       first[0]["kk_number"]) == 0
    under = await small_limit.post(URL, content=ndjson(family(posyandu)),
                                   headers={**tokens.admin(), "Content-Type": NDJSON})
    assert under.status_code == 200 and under.json()["households_imported"] == 1, under.text


async def test_an_import_keeps_yielding_the_event_loop(household: httpx.AsyncClient) -> None:
    # Delivered as one chunk (the test transport sends the body whole, as a fast client's bytes may arrive), and
    # refused row by row by the parser: nothing in it waits on the database, so only the parser can yield.
    body = UNREADY_ROW * 150_000
    finished = asyncio.Event()
    probes: list[float] = []

    async def probe() -> None:
        while not finished.is_set():
            sent = time.perf_counter()
            assert (await household.get("/healthz")).status_code == 200
            probes.append(time.perf_counter() - sent)
            await asyncio.sleep(0.05)

    async with loop_gaps() as gaps:
        probing = asyncio.create_task(probe())
        started = time.perf_counter()
        response = await household.post(URL, content=body, timeout=600,
                                        headers={**tokens.admin(), "Content-Type": NDJSON})
        took = time.perf_counter() - started
        finished.set()
        await probing
    assert response.status_code == 200 and response.json()["rows_rejected"] == 150_000, response.text
    assert took > 1, "the import should take seconds for the test to mean anything"
    # Without the yields the longest gap is the whole parse (4.6 s here). The bound is a share of the import's own
    # time: a loaded machine stretches both alike (a fixed 1 s failed there while the yields worked).
    bound = max(1.0, took / 4)
    assert max(gaps) < bound, f"the event loop was held for {max(gaps):.2f}s of a {took:.1f}s import"
    assert max(probes) < bound, f"a GET /healthz took {max(probes):.2f}s during a {took:.1f}s import"
    assert len(probes) > took / 1, f"{len(probes)} GET /healthz answered during a {took:.1f}s import"


async def test_one_import_more_than_the_cap_is_a_503_to_retry(
        household: httpx.AsyncClient, household_settings: HouseholdSettings, registry: httpx.AsyncClient,
        household_db: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(household_settings, "household_import_max_concurrent", 1)
    posyandu = await known_posyandu(registry, household_db)
    asked_for_more, release = asyncio.Event(), asyncio.Event()
    kk = kk_number()

    async def slow_body() -> AsyncIterator[bytes]:
        yield ndjson(family(posyandu, kk))
        asked_for_more.set()  # the import is reading its body: it holds the slot
        await release.wait()
        yield ndjson(family(posyandu))

    first = asyncio.create_task(household.post(URL, content=slow_body(), timeout=120,
                                               headers={**tokens.admin(), "Content-Type": NDJSON}))
    await asyncio.wait_for(asked_for_more.wait(), 30)
    refused = await household.post(URL, content=ndjson(family(posyandu)),
                                   headers={**tokens.admin(), "Content-Type": NDJSON})
    release.set()
    assert refused.status_code == 503, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert int(refused.headers["retry-after"]) > 0
    assert refused.json()["type"].endswith("/imports-busy")
    done = await first
    assert done.status_code == 200 and done.json()["households_imported"] == 2, done.text
    assert SLOTS.running == 0
    again = await household.post(URL, content=ndjson(family(posyandu)),
                                 headers={**tokens.admin(), "Content-Type": NDJSON})
    assert again.status_code == 200, again.text
