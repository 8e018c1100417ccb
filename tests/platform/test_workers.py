"""WEB_CONCURRENCY: `serve` runs several worker processes that answer requests, report the pod's metrics together,
and share one outbox: one relay leads, each row is published once, and a commit in another process wakes it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import Stack
from deploy.local.stack import create_topics
from shared.db import create_engine, create_sessionmaker
from shared.outbox import close_notifiers, enqueue
from shared.settings import ServiceSettings
from tests.faults.conftest import ServiceProcess
from tests.support import tokens
from tests.support.outbox import probe_event, read_settled
from tests.support.waiting import eventually


def workers_of(pid: int) -> list[int]:
    """The worker processes uvicorn spawned under the server process `pid`."""
    workers = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (entry / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if ppid == pid and b"spawn_main" in cmdline:
            workers.append(int(entry.name))
    return workers


@pytest.fixture(scope="module")
async def two_workers(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[
        tuple[ServiceProcess, str]]:
    """The registry served by two worker processes, on a database of its own. Its relay polls only every five
    minutes: whatever it publishes sooner, a wake-up brought."""
    dsn = await stack.migrated_database("registry", f"workers_{uuid.uuid4().hex[:8]}")
    server = ServiceProcess("registry", dsn, stack.broker.bootstrap_servers, tmp_path_factory.mktemp("workers"),
                            WEB_CONCURRENCY="2",
                            OUTBOX_POLL_INTERVAL_SECONDS="300")
    try:
        await server.start(ready_within=120)
        yield server, dsn
    finally:
        server.stop()


async def _metrics(url: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    async with httpx.AsyncClient(timeout=10) as client:
        text = (await client.get(f"{url}/metrics")).text
    return {family.name: [(sample.labels, sample.value) for sample in family.samples]
            for family in text_string_to_metric_families(text)}


async def test_two_workers_serve_requests_and_report_metrics_together(
        two_workers: tuple[ServiceProcess, str]) -> None:
    server, _ = two_workers
    assert server.process is not None
    pid = server.process.pid

    async def two_spawned() -> list[int] | None:
        spawned = workers_of(pid)
        return spawned if len(spawned) == 2 else None

    workers = await eventually(two_spawned, "two worker processes", timeout=60)
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        for _ in range(20):
            assert (await client.get("/healthz")).status_code == 200
        listed = await client.get("/api/v1/agencies", headers=tokens.admin())
        assert listed.status_code == 200, listed.text

    async def one_leader_of_two() -> dict[str, float] | None:
        # Whichever worker answers, /metrics holds the gauges of both: one series per worker, one of them leading.
        leaders = {labels["pid"]: value for labels, value in (await _metrics(server.url)).get(
            "outbox_relay_leader", []) if labels.get("service") == "registry"}
        return leaders if set(leaders) == {str(pid) for pid in workers} and sum(leaders.values()) == 1 else None

    await eventually(one_leader_of_two, "one leading relay among the two workers", timeout=60)
    requests = {labels.get("route"): value for labels, value in (await _metrics(server.url))["http_requests"]
                if labels.get("route") == "/healthz" and labels.get("status") == "200"}
    assert requests["/healthz"] >= 20  # counted across the workers, whichever answered


async def test_two_relaying_processes_publish_each_row_once_when_woken_from_a_third(
        two_workers: tuple[ServiceProcess, str], stack: Stack) -> None:
    """Rows committed by this test's process (no relay here) reach the topic once each, in order per key, long
    before the relays' five-minute poll: the NOTIFY sent after each commit woke the leader in the server."""
    _, dsn = two_workers
    topic = f"test.workers.{uuid.uuid4().hex[:8]}"
    await create_topics(stack.broker.bootstrap_servers, [topic], partitions=3)
    settings = ServiceSettings(database_url=dsn, kafka_bootstrap_servers=stack.broker.bootstrap_servers)
    engine = create_engine(settings)
    keys = [str(uuid.uuid4()) for _ in range(4)]
    written = 0
    try:
        sessionmaker = create_sessionmaker(engine)
        await asyncio.sleep(2)  # both relays are past their first fetch: they wait for a wake-up
        for _ in range(20):
            async with sessionmaker() as session, session.begin():
                entries = []
                for _ in range(10):
                    key = keys[written % len(keys)]
                    entries.append((probe_event(key, written), topic, key))
                    written += 1
                await enqueue(session, "registry", entries)
        received = await read_settled(stack.broker.bootstrap_servers, topic, written)
    finally:
        await close_notifiers()
        await engine.dispose()
    assert len(received) == written, "a row was published twice"
    assert len({r.event.id for r in received if r.event}) == written
    for key in keys:
        numbers = [r.event.data["n"] for r in received if r.event and r.event.subject == key]
        assert numbers == sorted(numbers) and len(numbers) == written // len(keys)


async def test_the_workers_shared_metrics_directory_goes_with_the_server(stack: Stack, tmp_path: Path) -> None:
    """Every multi-worker `serve` makes a fresh metrics directory; it is removed when the server stops (each test
    or local run used to leave one behind in /tmp)."""
    dsn = await stack.migrated_database("registry", f"workers_tmp_{uuid.uuid4().hex[:8]}")
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    server = ServiceProcess("registry", dsn, stack.broker.bootstrap_servers, tmp_path, WEB_CONCURRENCY="2",
                            TMPDIR=str(scratch))

    def metrics_directories() -> list[str]:
        return [p.name for p in scratch.iterdir() if p.name.startswith("posyandu-registry-metrics-")]

    try:
        await server.start(ready_within=120)
        assert len(metrics_directories()) == 1, list(scratch.iterdir())
    finally:
        server.stop()
    assert metrics_directories() == []
