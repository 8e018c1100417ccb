"""PostgreSQL restarts under load: the service recovers by itself, the requests caught by the outage fail cleanly,
and no acknowledged write is lost.

The registry runs as a real subprocess against a PostgreSQL server of this test's own (the session's server, which
the other tests use, is never touched), reached through the fault tests' TCP proxy (tests/support/netproxy.py) in
front of the server's unix socket. Clients write (register posyandu) and read (one posyandu, a list) steadily while
PostgreSQL is stopped and started again: first a fast shutdown (open transactions rolled back, connections
terminated), then a crash (immediate shutdown, recovery at start), then every database connection reset by the
network with the server up.

Every response must be a 2xx or a 503 problem+json error with a Retry-After: never a hang beyond the client's
timeout, a dropped connection, a 500 or a body of another kind. After each outage the service must answer 2xx again
and /readyz must say ready within a deadline, without being restarted itself. Every write acknowledged with a 2xx
must be in the database afterwards and its event on the broker.

A second test makes the path to the database go silent instead (the proxy's blackhole): the service's connect, command
and pool timeouts (set low here) turn what would hang into 503s, and the relay gives up its dead connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
import pytest

from conftest import Stack
from deploy.local.embedded import EmbeddedBroker, EmbeddedPostgres, free_port
from shared.errors import PROBLEM_MEDIA_TYPE
from shared.events.topics import REGISTRY_TOPIC
from tests.faults.conftest import ServiceProcess
from tests.support import tokens
from tests.support.factories import posyandu_body
from tests.support.kafka import Received, read_topic
from tests.support.netproxy import NetProxy
from tests.support.waiting import eventually

REGIONS_CSV = (b"kode,nama\n31,Daerah Khusus Ibukota Jakarta\n31.71,Kota Administrasi Jakarta Pusat\n"
               b"31.71.01,Gambir\n31.71.01.1001,Gambir\n")
WRITERS, READERS = 3, 3
#: No response may take longer than this (the client gives up then, and the test counts a hang).
RESPONSE_DEADLINE = 10.0
#: How long PostgreSQL stays down, and how soon after it is back the service must answer 2xx and be ready again.
DOWN_FOR, RECOVERY_DEADLINE = 2.0, 20.0
#: The service's database timeouts, low enough that a request caught by a silent path is answered well within the
#: deadline (a dead pooled connection: ping + reconnect; a statement: command timeout + closing its connection).
TIMEOUTS = {"DATABASE_CONNECT_TIMEOUT_SECONDS": "2", "DATABASE_COMMAND_TIMEOUT_SECONDS": "3",
            "DATABASE_POOL_TIMEOUT_SECONDS": "2"}


@pytest.fixture
async def private_pg() -> AsyncIterator[EmbeddedPostgres]:
    """A PostgreSQL server of this test's own, in a fresh data directory (as the session's in the root conftest)."""
    base = Path(tempfile.mkdtemp(prefix="posyandu-pg-restart-"))
    base.chmod(0o755)
    pg = EmbeddedPostgres(base / "pg", port=free_port())
    await asyncio.to_thread(pg.start)
    try:
        yield pg
    finally:
        await asyncio.to_thread(pg.stop, "immediate")
        shutil.rmtree(base, ignore_errors=True)


@dataclass
class Outcomes:
    """Every answer the load got: status counts, the acknowledged writes, and what was not a clean answer."""

    statuses: Counter[int] = field(default_factory=Counter)
    created: set[str] = field(default_factory=set)
    unclean: list[str] = field(default_factory=list)
    slowest: float = 0.0

    @property
    def failed(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500) + len(self.unclean)

    def check(self, what: str, response: httpx.Response, elapsed: float) -> bool:
        """Record one answer; True for a 2xx. A failure must be a 503 problem+json document with a Retry-After (a 500
        would say the error was not understood, and the server closes the connection after one)."""
        self.statuses[response.status_code] += 1
        self.slowest = max(self.slowest, elapsed)
        if response.is_success:
            return True
        content_type = response.headers.get("content-type", "")
        try:
            clean = (response.status_code == 503 and content_type == PROBLEM_MEDIA_TYPE
                     and response.json()["status"] == 503 and "retry-after" in response.headers)
        except ValueError:
            clean = False
        if not clean:
            self.unclean.append(f"{what}: {response.status_code} {content_type} {response.text[:300]}")
        return False


async def load(client: httpx.AsyncClient, outcomes: Outcomes, stop: asyncio.Event, *, write: bool,
               known: list[str]) -> None:
    """Register posyandu (write) or read them back (one, then a page of the list), one request at a time."""
    for n in itertools.count():
        if stop.is_set():
            return
        started = time.monotonic()
        what = "register" if write else ("read" if n % 2 else "list")
        try:
            if write:
                response = await client.post("/api/v1/posyandu", json=posyandu_body(), headers=tokens.admin())
            elif what == "read":
                response = await client.get(f"/api/v1/posyandu/{known[n % len(known)]}", headers=tokens.admin())
            else:
                response = await client.get("/api/v1/posyandu", params={"region": "3171011001", "limit": 20},
                                            headers=tokens.admin())
        except httpx.HTTPError as exc:  # a timeout (a hang) or a dropped connection
            outcomes.unclean.append(f"{what}: {exc!r} after {time.monotonic() - started:.1f}s")
            await asyncio.sleep(0.1)
            continue
        if outcomes.check(what, response, time.monotonic() - started) and write:
            outcomes.created.add(response.json()["id"])
            known.append(response.json()["id"])
        await asyncio.sleep(0.02)


async def serves_again(client: httpx.AsyncClient, since: float) -> float:
    """Seconds from `since` until a write, a read and /readyz all succeed (the service recovered by itself)."""

    async def recovered() -> bool:
        try:
            created = await client.post("/api/v1/posyandu", json=posyandu_body(), headers=tokens.admin())
            if created.status_code != 201:
                return False
            read = await client.get(f"/api/v1/posyandu/{created.json()['id']}", headers=tokens.admin())
            return read.status_code == 200 and (await client.get("/readyz")).status_code == 200
        except httpx.HTTPError:
            return False

    await eventually(recovered, "the service to serve 2xx and be ready again", timeout=RECOVERY_DEADLINE,
                     interval=0.2)
    return time.monotonic() - since


@dataclass
class Setup:
    """The registry as a subprocess whose database is reached through the proxy, and a client of it."""

    proxy: NetProxy
    registry: ServiceProcess
    client: httpx.AsyncClient
    direct_dsn: str
    outcomes: Outcomes
    known: list[str]

    @contextlib.asynccontextmanager
    async def load(self) -> AsyncIterator[None]:
        """Writers and readers running until the block ends (then each finishes its request in flight)."""
        stop = asyncio.Event()
        workers = [asyncio.create_task(load(self.client, self.outcomes, stop, write=n < WRITERS, known=self.known))
                   for n in range(WRITERS + READERS)]
        try:
            yield
        finally:
            stop.set()
            await asyncio.gather(*workers)

    async def check_acknowledged_writes(self, broker: EmbeddedBroker) -> None:
        """Every acknowledged write is stored, and its event reaches the broker (the relay recovered too)."""
        db = await asyncpg.connect(self.direct_dsn)
        try:
            stored = {str(r["id"]) for r in await db.fetch("SELECT id FROM posyandu")}
            lost = self.outcomes.created - stored
            assert not lost, f"acknowledged writes lost: {sorted(lost)[:5]}"

            async def all_published() -> bool:
                return not await db.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL")

            await eventually(all_published, "the relay to publish every event", timeout=30, interval=0.2)
        finally:
            await db.close()

        def every_registration(received: list[Received]) -> bool:
            return self.outcomes.created <= {r.event.subject for r in received
                                             if r.event and r.event.type == "posyandu.posyandu.registered.v1"}

        await read_topic(broker.bootstrap_servers, REGISTRY_TOPIC, timeout=30, until=every_registration)


@pytest.fixture
async def setup(private_pg: EmbeddedPostgres, broker: EmbeddedBroker,
                services: Callable[..., ServiceProcess]) -> AsyncIterator[Setup]:
    direct_dsn = await Stack(private_pg, broker).migrated_database("registry", "registry")
    async with NetProxy(private_pg.socket_dir / f".s.PGSQL.{private_pg.port}") as proxy:
        registry = services("registry", f"postgresql://postgres@{proxy.address}/registry", broker.bootstrap_servers,
                            **TIMEOUTS)
        await registry.start()
        limits = httpx.Limits(max_connections=WRITERS + READERS + 2)
        async with httpx.AsyncClient(base_url=registry.url, timeout=RESPONSE_DEADLINE, limits=limits) as client:
            imported = await client.post("/api/v1/regions/import", content=REGIONS_CSV,
                                         headers={**tokens.admin(), "Content-Type": "text/csv"})
            assert imported.status_code == 200, imported.text
            first = await client.post("/api/v1/posyandu", json=posyandu_body(), headers=tokens.admin())
            assert first.status_code == 201, first.text
            yield Setup(proxy, registry, client, direct_dsn, Outcomes(created={first.json()["id"]}),
                        [first.json()["id"]])


async def test_postgres_restarts_under_load_and_the_service_recovers_by_itself(
        setup: Setup, private_pg: EmbeddedPostgres, broker: EmbeddedBroker) -> None:
    assert setup.registry.process is not None
    pid = setup.registry.process.pid
    outcomes = setup.outcomes
    recovered_in: dict[str, float] = {}
    failed_in: dict[str, int] = {}

    async def outage(name: str, fault: Callable[[], Awaitable[None]]) -> None:
        await asyncio.sleep(2)  # steady load first
        failed_before = outcomes.failed
        await fault()
        recovered_in[name] = await serves_again(setup.client, time.monotonic())
        failed_in[name] = outcomes.failed - failed_before

    async def restart(mode: str) -> None:
        await asyncio.to_thread(private_pg.stop, mode)
        await asyncio.sleep(DOWN_FOR)
        await asyncio.to_thread(private_pg.start)

    async def network_reset() -> None:
        setup.proxy.reset()
        await asyncio.sleep(DOWN_FOR)
        setup.proxy.pass_through()

    async with setup.load():
        await outage("fast shutdown", lambda: restart("fast"))
        await outage("crash", lambda: restart("immediate"))
        await outage("connections reset", network_reset)
        await asyncio.sleep(2)  # steady load after the last recovery

    print(f"\nanswers {dict(outcomes.statuses)}, slowest {outcomes.slowest:.2f}s; "
          + ", ".join(f"{name}: {failed_in[name]} failed, 2xx again in {seconds:.1f}s"
                      for name, seconds in recovered_in.items()))
    assert setup.registry.process.poll() is None, f"the service died: {setup.registry.log_tail()}"
    assert setup.registry.process.pid == pid, "the service was restarted"
    assert not outcomes.unclean, outcomes.unclean[:10]
    assert outcomes.slowest < RESPONSE_DEADLINE
    assert all(failed_in.values()), f"an outage did not reach the service: {failed_in}"
    await setup.check_acknowledged_writes(broker)


async def test_a_database_that_stops_answering_fails_requests_in_time_and_the_service_recovers(
        setup: Setup, broker: EmbeddedBroker) -> None:
    """The path to PostgreSQL goes silent (a partition, a failover that leaves half-open connections): requests must
    still be answered within the deadline (503), and once the path is back the service, its relay included, must
    recover by itself even though its connections that fell into the hole never answer again."""
    async with setup.load():
        await asyncio.sleep(1)
        failed_before = setup.outcomes.failed
        setup.proxy.blackhole()
        await asyncio.sleep(DOWN_FOR * 2)
        setup.proxy.pass_through()
        await serves_again(setup.client, time.monotonic())
    print(f"\nanswers {dict(setup.outcomes.statuses)}, slowest {setup.outcomes.slowest:.2f}s; "
          f"{setup.outcomes.unclean[:3]}")
    assert not setup.outcomes.unclean, setup.outcomes.unclean[:10]
    assert setup.outcomes.failed > failed_before
    await setup.check_acknowledged_writes(broker)
