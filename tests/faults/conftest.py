"""Fault-test helpers: a broker of the test's own, services run as real
subprocesses on free ports, the registry facts the services need fed straight onto the registry topic (tests wait with
tests/support/waiting.py). Each test stops everything it starts."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from conftest import Stack
from deploy.local.embedded import EmbeddedBroker, free_port
from deploy.local.stack import create_topics
from shared.events.topics import ALL_TOPICS
from shared.settings import DEV_JWT_SECRET
from tests.support.streams import Stream, publish

ROOT = Path(__file__).resolve().parents[2]

#: Gambir, Jakarta Pusat: the village every fault test registers its households in.
VILLAGE = "3171011001"


@pytest.fixture
async def broker() -> AsyncIterator[EmbeddedBroker]:
    """A broker of this test's own (memory-only), with every topic: crafted events reach only this test's services."""
    own = EmbeddedBroker(free_port())
    own.start()
    try:
        await create_topics(own.bootstrap_servers, list(ALL_TOPICS))
        yield own
    finally:
        own.stop()


def unique(name: str) -> str:
    return f"fault_{name}_{uuid.uuid4().hex[:8]}"


@dataclass
class Places:
    """The registry facts of one village: its region chain, a posyandu and an agency per field."""

    posyandu_id: uuid.UUID
    agencies: dict[str, uuid.UUID] = field(default_factory=dict)


def registry_stream(fields: tuple[str, ...] = ("pekerjaan-umum", "kesehatan")) -> tuple[Stream, Places]:
    stream = Stream(datetime.now(UTC))
    stream.region("31", "DKI Jakarta", "province", None)
    stream.region("3171", "Kota Administrasi Jakarta Pusat", "regency", "31")
    stream.region("317101", "Gambir", "district", "3171")
    stream.region(VILLAGE, "Gambir", "village", "317101")
    places = Places(stream.posyandu(VILLAGE))
    for spm_field in fields:
        places.agencies[spm_field] = stream.agency("3171", [spm_field])
    return stream, places


async def seed_registry(bootstrap_servers: str) -> Places:
    stream, places = registry_stream()
    await publish(bootstrap_servers, stream.events)
    return places


async def fetchval(dsn: str, query: str, *args: object) -> object:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval(query, *args)
    finally:
        await conn.close()


async def consumer_caught_up(bootstrap_servers: str, group: str, topics: list[str]) -> bool:
    """Whether the group's committed offsets reached the end of every partition of these topics (read with a manual
    assignment: it fetches the group's offsets without joining the group)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer.topics()  # loads the metadata
        partitions = [TopicPartition(topic, p) for topic in topics
                      for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        for tp in partitions:
            if ends[tp] and (await consumer.committed(tp) or 0) < ends[tp]:
                return False
        return True
    finally:
        await consumer.stop()


class ServiceProcess:
    """One service run as `python -m services.<name> serve`, as in deploy/local/stack.py, on a free port."""

    def __init__(self, name: str, database_url: str, bootstrap_servers: str, logdir: Path,
                 **env: str) -> None:
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.logfile = logdir / f"{name}.log"
        self.env = {**os.environ, "ENVIRONMENT": "test", "HOST": "127.0.0.1", "PORT": str(self.port),
                    "DATABASE_URL": database_url,
                    "KAFKA_BOOTSTRAP_SERVERS": bootstrap_servers, "KAFKA_FETCH_MAX_WAIT_MS": "10",
                    "AUTH_JWT_SECRET": DEV_JWT_SECRET,
                    "OUTBOX_POLL_INTERVAL_SECONDS": "0.2", "LOG_LEVEL": "WARNING", "PYTHONPATH": str(ROOT), **env}
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    async def start(self, ready_within: float = 60) -> None:
        self.process = self._spawn()
        deadline = time.monotonic() + ready_within
        async with httpx.AsyncClient(timeout=2) as client:
            while True:
                assert self.process.poll() is None, f"{self.name} exited: {self.log_tail()}"
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"{self.url}/readyz")).status_code == 200:
                        return
                assert time.monotonic() < deadline, f"{self.name} not ready in {ready_within}s: {self.log_tail()}"
                await asyncio.sleep(0.1)

    def _spawn(self) -> subprocess.Popen[bytes]:
        if self._log is None:
            self._log = open(self.logfile, "ab")
        return subprocess.Popen([sys.executable, "-m", f"services.{self.name}", "serve"], env=self.env, cwd=ROOT,
                                stdout=self._log, stderr=subprocess.STDOUT)

    def kill(self) -> None:
        """SIGKILL: no drain, no offset commit, no clean-up."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)
        self.process = None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.process = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_tail(self, chars: int = 3000) -> str:
        with contextlib.suppress(OSError):
            return self.logfile.read_text(errors="replace")[-chars:]
        return ""


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Callable[..., ServiceProcess]]:
    """Start service subprocesses; every one is stopped at the end of the test."""
    started: list[ServiceProcess] = []

    def make(name: str, database_url: str, bootstrap_servers: str, **env: str) -> ServiceProcess:
        service = ServiceProcess(name, database_url, bootstrap_servers, tmp_path, **env)
        started.append(service)
        return service

    yield make
    for service in started:
        service.stop()


__all__ = ["Stack", "fetchval", "seed_registry", "unique"]
