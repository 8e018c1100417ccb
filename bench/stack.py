"""A private local stack for the benchmarks: its own temporary data directory, free ports, nothing shared.

It never touches `.data/` or the ports of `make run` (8001-8004, 9092), so a running stack is not disturbed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx

from bench.measure import CpuMeter
from deploy.local.embedded import EmbeddedBroker, EmbeddedPostgres, free_port
from deploy.local.stack import create_databases, create_topics, service_env, wait_ready
from shared.events.topics import ALL_TOPICS

ROOT = Path(__file__).resolve().parents[1]
SERVICE_NAMES = ("registry", "household", "referral", "reporting")
ROUNDTRIP_TOPIC = "bench.roundtrip.v1"
#: The second topic of the raw two-hop baseline (a plain consumer of ROUNDTRIP_TOPIC forwards each record here).
SECOND_HOP_TOPIC = "bench.second-hop.v1"


def progress(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


@dataclass
class BenchStack:
    base: Path
    pg: EmbeddedPostgres
    broker: EmbeddedBroker
    ports: dict[str, int] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def dsn(self, name: str) -> str:
        return self.pg.dsn(name)

    def pid(self, name: str) -> int:
        return self.processes[name].pid

    async def connect(self, name: str) -> asyncpg.Connection:
        return await asyncpg.connect(self.dsn(name))

    def cpu_pids(self) -> dict[str, int]:
        """The processes whose CPU a section counts: each service (with its workers), PostgreSQL (with its backends),
        the broker and this bench process."""
        pids = {name: proc.pid for name, proc in self.processes.items()}
        with contextlib.suppress(OSError, ValueError):
            pids["postgres"] = int((self.pg.datadir / "postmaster.pid").read_text().split()[0])
        broker = getattr(self.broker, "_process", None)
        if broker is not None:
            pids["broker"] = broker.pid
        pids["bench"] = os.getpid()
        return pids

    def meter(self, phase: str) -> CpuMeter:
        """A started CpuMeter of the stack's processes: call `.stop(operations)` after the phase's work and give
        the figures to `Results.record_load`."""
        return CpuMeter(phase, self.cpu_pids()).start()

    def check_alive(self) -> None:
        for name, proc in self.processes.items():
            if proc.poll() is not None:
                raise RuntimeError(f"the {name} service exited ({proc.returncode}); see {self.base / name}.log")


def start() -> BenchStack:
    base = Path(tempfile.mkdtemp(prefix="posyandu-bench-"))
    base.chmod(0o755)
    pg = EmbeddedPostgres(base / "pg", port=free_port())
    broker = EmbeddedBroker(free_port(), logfile=base / "broker.log")
    stack = BenchStack(base, pg, broker)
    try:
        progress(f"starting PostgreSQL and the broker in {base} ...")
        pg.start()
        broker.start()
        asyncio.run(create_databases(pg, list(SERVICE_NAMES)))
        asyncio.run(create_topics(broker.bootstrap_servers, [*ALL_TOPICS, ROUNDTRIP_TOPIC, SECOND_HOP_TOPIC]))
        for name in SERVICE_NAMES:
            port = free_port()
            while port in (8001, 8002, 8003, 8004, 9092) or port in stack.ports.values():
                port = free_port()
            stack.ports[name] = port
        for name in SERVICE_NAMES:
            env = service_env(name, stack.ports[name], pg, broker)
            env["LOG_LEVEL"] = os.environ.get("BENCH_LOG_LEVEL", "WARNING")
            env["HOUSEHOLD_API_URL"] = f"http://127.0.0.1:{stack.ports['household']}"
            # The full-scale import's file (1,000,000 members) is over the default 50 MiB body limit.
            env["HOUSEHOLD_IMPORT_MAX_BYTES"] = str(2 * 1024 ** 3)
            progress(f"migrating and starting {name} on port {stack.ports[name]} ...")
            subprocess.run([sys.executable, "-m", f"services.{name}", "migrate"], env=env, check=True, cwd=ROOT,
                           stdout=subprocess.DEVNULL, timeout=300)
            log = open(base / f"{name}.log", "ab")
            stack.processes[name] = subprocess.Popen([sys.executable, "-m", f"services.{name}", "serve"], env=env,
                                                     cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        for name in SERVICE_NAMES:
            asyncio.run(wait_ready(stack.url(name), within=120))
        return stack
    except BaseException:
        stop(stack)
        raise


def stop(stack: BenchStack, keep: bool = False) -> None:
    progress("stopping the bench stack ...")
    for proc in stack.processes.values():
        with contextlib.suppress(Exception):
            proc.terminate()
    for proc in stack.processes.values():
        try:
            proc.wait(25)
        except subprocess.TimeoutExpired:
            proc.kill()
            with contextlib.suppress(Exception):
                proc.wait(10)
    with contextlib.suppress(Exception):
        stack.broker.stop()
    with contextlib.suppress(Exception):
        stack.pg.stop("immediate")
    if not keep:
        shutil.rmtree(stack.base, ignore_errors=True)
    else:
        progress(f"kept {stack.base} (logs)")


async def wait_for(conn: asyncpg.Connection, query: str, *args: object, expected: int, within: float,
                   what: str) -> float:
    """Poll `query` (a count) until it reaches `expected`; returns the seconds waited. Raises on timeout."""
    started = time.perf_counter()
    deadline = started + within
    while True:
        value = await conn.fetchval(query, *args)
        if value >= expected:
            return time.perf_counter() - started
        if time.perf_counter() > deadline:
            raise TimeoutError(f"{what}: {value}/{expected} after {within}s")
        await asyncio.sleep(0.05)


async def wait_quiet(conn: asyncpg.Connection, query: str, *, settle: float = 3.0, within: float = 600,
                     what: str = "") -> int:
    """Poll a count until it stops changing for `settle` seconds (a consumer caught up), bounded by `within`."""
    deadline = time.perf_counter() + within
    last = await conn.fetchval(query)
    stable_since = time.perf_counter()
    while time.perf_counter() < deadline:
        await asyncio.sleep(0.5)
        value = await conn.fetchval(query)
        if value != last:
            last, stable_since = value, time.perf_counter()
        elif time.perf_counter() - stable_since >= settle:
            return int(value)
    progress(f"WARNING: {what} still changing after {within}s; carrying on")
    return int(last)


async def http_ok(client: httpx.AsyncClient, method: str, url: str, **kwargs: object) -> httpx.Response:
    response = await client.request(method, url, **kwargs)  # type: ignore[arg-type]
    if response.status_code >= 400:
        raise RuntimeError(f"{method} {url}: {response.status_code} {response.text[:400]}")
    return response
