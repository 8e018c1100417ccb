"""Two concurrent creates of the same thing: the database's unique index decides, and the loser gets a 409, not a
500 (shared/errors.py maps the unique violation once; shared/conflicts.py names the conflict where a write knows
it). The race is forced, not hoped for: a lock on the table lets
both requests pass their pre-check and holds their inserts until both wait; then one commits first.

The household registration uses regency 1602 (Ogan Komering Ilir), reserved for these tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable
from typing import Any

import asyncpg
import httpx
import pytest
import sqlalchemy as sa
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy.exc import IntegrityError

from conftest import Stack, service_settings
from services.registry.settings import RegistrySettings
from shared.conflicts import unique_or_conflict, violated_unique
from shared.db import SessionDep, create_engine, create_sessionmaker
from shared.errors import Conflict, install_problem_handlers
from tests.support import tokens
from tests.support.factories import kk_number, known_posyandu

KAYU_AGUNG = "1602011001"
REGIONS = (b"kode,nama\n16,Sumatera Selatan\n16.02,Ogan Komering Ilir\n16.02.01,Kayu Agung\n"
           b"16.02.01.1001,Kayu Agung\n")


#: How many lock requests on a table wait (not granted).
WAITING = "SELECT count(*) FROM pg_locks WHERE relation = to_regclass($1) AND NOT granted"


async def race(database_url: str, table: str, *requests: Awaitable[httpx.Response]) -> list[httpx.Response]:
    """Runs the requests concurrently while a SHARE lock on `table` holds every insert into it (reads go on), until
    all of them wait for it; then lets them go."""
    locker = await asyncpg.connect(database_url)
    try:
        transaction = locker.transaction()
        await transaction.start()
        await locker.execute(f"LOCK TABLE {table} IN SHARE MODE")
        running = asyncio.ensure_future(asyncio.gather(*requests))
        try:
            deadline = time.monotonic() + 60
            while await locker.fetchval(WAITING, table) < len(requests):
                assert not running.done(), f"a request finished before its insert: {running.result()}"
                assert time.monotonic() < deadline, "the requests never reached their inserts"
                await asyncio.sleep(0.05)
        finally:
            await transaction.commit()
        return list(await running)
    finally:
        await locker.close()


@pytest.fixture
async def probes(stack: Stack) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """An app with the shared error mapper and one create that pre-checks, on a table of its own."""
    dsn = await stack.migrated_database("registry", f"race_{uuid.uuid4().hex[:8]}")
    settings = RegistrySettings(**service_settings(stack, dsn))
    conn = await asyncpg.connect(dsn)
    await conn.execute("CREATE TABLE race_probes (code text PRIMARY KEY)")
    await conn.close()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        engine = create_engine(settings)
        yield {"sessionmaker": create_sessionmaker(engine)}
        await engine.dispose()

    app = FastAPI(lifespan=lifespan)
    install_problem_handlers(app)

    @app.post("/probes/{code}", status_code=201)
    async def create(code: str, session: SessionDep) -> dict[str, str]:
        if await session.scalar(sa.text("SELECT code FROM race_probes WHERE code = :code"), {"code": code}):
            raise Conflict(f"Probe {code} exists already.")
        await session.execute(sa.text("INSERT INTO race_probes (code) VALUES (:code)"), {"code": code})
        return {"code": code}

    async with LifespanManager(app) as manager:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://race") as client:
            yield client, dsn


async def test_the_loser_of_a_race_past_the_pre_check_gets_a_409(probes: tuple[httpx.AsyncClient, str]) -> None:
    client, dsn = probes
    answers = await race(dsn, "race_probes", client.post("/probes/a"), client.post("/probes/a"))
    assert sorted(r.status_code for r in answers) == [201, 409]
    lost = next(r for r in answers if r.status_code == 409)
    assert lost.headers["content-type"] == "application/problem+json"
    assert lost.json()["type"].endswith("/conflict") and "unique" in lost.json()["detail"]
    # Without a race the pre-check answers, as before.
    again = await client.post("/probes/a")
    assert (again.status_code, again.json()["detail"]) == (409, "Probe a exists already.")
    conn = await asyncpg.connect(dsn)
    try:
        assert await conn.fetchval("SELECT count(*) FROM race_probes") == 1
    finally:
        await conn.close()


async def test_two_concurrent_registrations_of_one_kk_number(registry: httpx.AsyncClient,
                                                             household: httpx.AsyncClient,
                                                             household_db: asyncpg.Connection,
                                                             household_settings: Any) -> None:
    """The household registration checks the KK number first; two requests that both pass the check: one 201,
    one 409, one household."""
    imported = await registry.post("/api/v1/regions/import", content=REGIONS,
                                   headers={**tokens.admin(), "Content-Type": "text/csv"})
    assert imported.status_code == 200, imported.text
    deadline = time.monotonic() + 60
    while not await household_db.fetchval("SELECT count(*) FROM known_regions WHERE code = $1", KAYU_AGUNG):
        assert time.monotonic() < deadline, "the household service never heard of the village"
        await asyncio.sleep(0.1)
    posyandu = await known_posyandu(registry, household_db, KAYU_AGUNG)
    body = {"kk_number": kk_number(district="160201"), "village_code": KAYU_AGUNG, "posyandu_id": posyandu,
            "members": []}
    kader = tokens.kader([posyandu])
    answers = await race(household_settings.database_url, "households",
                         household.post("/api/v1/households", json=body, headers=kader),
                         household.post("/api/v1/households", json=body, headers=kader))
    assert sorted(r.status_code for r in answers) == [201, 409], [r.text for r in answers]
    assert next(r for r in answers if r.status_code == 409).headers["content-type"] == "application/problem+json"
    assert await household_db.fetchval("SELECT count(*) FROM households WHERE kk_number = $1",
                                       body["kk_number"]) == 1


async def test_a_named_unique_conflict_keeps_the_transaction_and_other_integrity_errors_propagate(
        stack: Stack) -> None:
    """`unique_or_conflict` turns only a unique violation into its Conflict, in a savepoint, so the caller's
    transaction goes on; a foreign-key violation is not a conflict and reaches the caller as it is."""
    dsn = await stack.migrated_database("registry", f"conflicts_{uuid.uuid4().hex[:8]}")
    conn = await asyncpg.connect(dsn)
    await conn.execute("CREATE TABLE conflict_probes (code text PRIMARY KEY);"
                       "CREATE TABLE conflict_refs (code text REFERENCES conflict_probes (code))")
    await conn.close()
    engine = create_engine(RegistrySettings(**service_settings(stack, dsn)))
    insert = sa.text("INSERT INTO conflict_probes (code) VALUES (:code)")
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            await session.execute(insert, {"code": "a"})
            with pytest.raises(Conflict) as taken:
                async with unique_or_conflict(session, "Probe a exists already."):
                    await session.execute(insert, {"code": "a"})
            assert taken.value.detail == "Probe a exists already."
            assert violated_unique(taken.value.__cause__) == "conflict_probes_pkey"  # type: ignore[arg-type]
            with pytest.raises(IntegrityError) as dangling:
                async with unique_or_conflict(session, "never"):
                    await session.execute(sa.text("INSERT INTO conflict_refs (code) VALUES ('nobody')"))
            assert violated_unique(dangling.value) is None
            await session.execute(insert, {"code": "b"})  # the transaction is still usable
        async with create_sessionmaker(engine)() as session:
            assert await session.scalar(sa.text("SELECT string_agg(code, ',' ORDER BY code) FROM conflict_probes")) \
                == "a,b"
    finally:
        await engine.dispose()
