"""`make run`: the whole local stack on this machine, no Docker and no system services.

Starts the embedded PostgreSQL (data kept in .data/pg) and the embedded broker, creates one database per
service and the topics, migrates, starts each service, loads the demo data, and writes the dev tokens
and addresses to .data/. Ctrl-C stops everything it started.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from deploy.local.embedded import EmbeddedBroker, EmbeddedPostgres, free_port
from shared.auth import Role, mint_token
from shared.events.topics import ALL_TOPICS
from shared.settings import DEV_JWT_SECRET

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / ".data"
TOPIC_PARTITIONS = 3


@dataclass(frozen=True)
class ServiceProcess:
    name: str
    port: int


#: The services that exist today, in start order.
SERVICES = [ServiceProcess("registry", 8001), ServiceProcess("household", 8002)]


def service_env(name: str, port: int, pg: EmbeddedPostgres, broker: EmbeddedBroker) -> dict[str, str]:
    return {
        **os.environ,
        "ENVIRONMENT": "local",
        "PORT": str(port),
        "DATABASE_URL": pg.dsn(name),
        "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
        # The embedded broker answers fetches only when the wait expires: keep it short.
        "KAFKA_FETCH_MAX_WAIT_MS": os.environ.get("KAFKA_FETCH_MAX_WAIT_MS", "10"),
        "AUTH_JWT_SECRET": DEV_JWT_SECRET,
        "PYTHONPATH": str(ROOT),
    }


async def create_databases(pg: EmbeddedPostgres, names: list[str]) -> None:
    conn = await asyncpg.connect(pg.dsn())
    try:
        existing = {r["datname"] for r in await conn.fetch("SELECT datname FROM pg_database")}
        for name in names:
            if name not in existing:
                await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def create_topics(bootstrap_servers: str, topics: list[str], partitions: int = TOPIC_PARTITIONS) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [NewTopic(t, partitions, 1) for t in topics if t not in existing]
        if missing:
            await admin.create_topics(missing)
    finally:
        await admin.close()


async def wait_ready(url: str, within: float = 60) -> None:
    deadline = time.monotonic() + within
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(f"{url}/readyz", timeout=2)).status_code == 200:
                    return
            await asyncio.sleep(0.3)
    raise TimeoutError(f"{url} did not become ready in {within}s")


def dev_tokens(demo_posyandu: list[str], demo_agency: str | None, expires_in: int = 30 * 24 * 3600) -> dict[str, str]:
    """One token per role, scoped to the demo data (kader of Gambir's posyandu, pembina of Jakarta Pusat)."""
    return {
        "admin": mint_token(DEV_JWT_SECRET, Role.ADMIN, sub="admin-dev", expires_in=expires_in),
        "kader": mint_token(DEV_JWT_SECRET, Role.KADER, sub="kader-dev", expires_in=expires_in,
                            posyandu_ids=demo_posyandu),
        "opd": mint_token(DEV_JWT_SECRET, Role.OPD, sub="opd-dev", expires_in=expires_in, agency_id=demo_agency,
                          fields=["kesehatan"]),
        "pembina": mint_token(DEV_JWT_SECRET, Role.PEMBINA, sub="pembina-dev", expires_in=expires_in,
                              region_prefix="3171"),
        "service": mint_token(DEV_JWT_SECRET, Role.SERVICE, sub="service-dev", expires_in=expires_in),
    }


async def load_demo(registry_url: str) -> dict[str, str]:
    from services.registry import demo

    admin = mint_token(DEV_JWT_SECRET, Role.ADMIN, sub="demo-loader")
    async with httpx.AsyncClient(base_url=registry_url, timeout=30) as client:
        ids = await demo.load(client, admin)
    posyandu = [pid for code, pid in ids.posyandu.items() if code.startswith("P3171")]
    agency = ids.agencies.get("Dinas Kesehatan Kota Administrasi Jakarta Pusat")
    return dev_tokens(posyandu[:1], agency)


def main() -> None:
    DATA.mkdir(exist_ok=True)
    pg = EmbeddedPostgres(DATA / "pg")
    port = int(os.environ.get("KAFKA_PORT", "9092"))
    broker = EmbeddedBroker(port if _port_free(port) else free_port(), logfile=DATA / "broker.log")
    processes: list[subprocess.Popen[bytes]] = []

    def stop(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        print("starting PostgreSQL (.data/pg) and the broker ...", flush=True)
        pg.start()
        broker.start()
        asyncio.run(create_databases(pg, [s.name for s in SERVICES]))
        asyncio.run(create_topics(broker.bootstrap_servers, list(ALL_TOPICS)))
        for svc in SERVICES:
            env = service_env(svc.name, svc.port, pg, broker)
            subprocess.run([sys.executable, "-m", f"services.{svc.name}", "migrate"], env=env, check=True, cwd=ROOT)
            log = open(DATA / f"{svc.name}.log", "ab")
            processes.append(subprocess.Popen([sys.executable, "-m", f"services.{svc.name}", "serve"], env=env,
                                              cwd=ROOT, stdout=log, stderr=subprocess.STDOUT))
        urls = {s.name: f"http://127.0.0.1:{s.port}" for s in SERVICES}
        for url in urls.values():
            asyncio.run(wait_ready(url))
        print("loading the demo data ...", flush=True)
        tokens = asyncio.run(load_demo(urls["registry"]))
        (DATA / "dev-tokens.json").write_text(json.dumps(tokens, indent=2))
        (DATA / "stack.json").write_text(json.dumps(
            {"kafka_bootstrap_servers": broker.bootstrap_servers, "services": urls,
             "database_socket_dir": str(pg.socket_dir)}, indent=2))
        print("\nThe posyandu stack is running:")
        for name, url in urls.items():
            print(f"  {name:<10} {url}/docs   (events: {url}/asyncapi.json)")
        print(f"  kafka      {broker.bootstrap_servers}")
        print(f"  postgres   {pg.dsn('<service>')}")
        print("\nBearer tokens (also in .data/dev-tokens.json):")
        for role, token in tokens.items():
            print(f"  {role:<8} {token}")
        print("\nLogs in .data/*.log. Ctrl-C stops everything.", flush=True)
        while all(p.poll() is None for p in processes):
            time.sleep(0.5)
        print("a service exited; see .data/*.log", file=sys.stderr)
    except KeyboardInterrupt:
        print("\nstopping ...", flush=True)
    finally:
        for p in processes:
            p.terminate()
        for p in processes:
            try:
                p.wait(25)
            except subprocess.TimeoutExpired:
                p.kill()
        broker.stop()
        pg.stop()


def _port_free(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


if __name__ == "__main__":
    main()
