"""`make run`: the whole local stack on this machine, no Docker and no system services.

Starts the embedded PostgreSQL (data kept in .data/pg) and the embedded broker, creates one database per
service and the topics, migrates, starts each service, loads the demo data, and writes the dev tokens
and addresses to .data/. Each service's outbox relay gives the fresh (memory-only) broker the history it
kept in its database, so every topic offers its events again after a restart.

Ctrl-C (SIGINT, or SIGTERM) stops everything it started within STOP_SECONDS, whatever it is doing. The
services run in sessions of their own, so the terminal's Ctrl-C reaches this process alone, which abandons
what it was doing and stops the services (SIGTERM, then SIGKILL), the broker and PostgreSQL in that order,
each within a bound.

Settings (environment): STACK_DATA_DIR (default .data), STACK_PORT_BASE (the services listen on base+1 to
base+4; default 8000), KAFKA_PORT (default 9092), STACK_DEMO_HOUSEHOLDS (default 300; 0 loads no
household demo).
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
from datetime import date
from pathlib import Path

import asyncpg
import httpx
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from deploy.local.embedded import EmbeddedBroker, EmbeddedPostgres, _die_with_parent, free_port
from deploy.local.token import LOCAL_TOKEN_HOURS, local_token
from shared.auth import Role, mint_token
from shared.events.topics import ALL_TOPICS, DEAD_LETTER_RETENTION_DAYS, INTERNAL_TOPICS, RETENTION_DAYS
from shared.settings import DEV_JWT_SECRET

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("STACK_DATA_DIR") or ROOT / ".data").resolve()
TOPIC_PARTITIONS = 3
#: The longest Ctrl-C takes to stop everything: services, then broker, then PostgreSQL.
STOP_SECONDS = 8.0


@dataclass(frozen=True)
class ServiceProcess:
    name: str
    port: int


_PORT_BASE = int(os.environ.get("STACK_PORT_BASE", "8000"))
#: The services that exist today, in start order.
SERVICES = [ServiceProcess(name, _PORT_BASE + n) for n, name in
            enumerate(("registry", "household", "referral", "reporting"), start=1)]


def service_env(name: str, port: int, pg: EmbeddedPostgres, broker: EmbeddedBroker) -> dict[str, str]:
    return {
        **os.environ,
        "ENVIRONMENT": "local",
        # Loopback, whatever the shell exports as HOST: the stack's tokens are signed with a published secret.
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "DATABASE_URL": pg.dsn(name),
        "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
        # The embedded broker answers fetches only when the wait expires: keep it short.
        "KAFKA_FETCH_MAX_WAIT_MS": os.environ.get("KAFKA_FETCH_MAX_WAIT_MS", "10"),
        "AUTH_JWT_SECRET": DEV_JWT_SECRET,
        # The demo loaders replay their creates with fixed Idempotency-Keys on every `make run`, months apart.
        "IDEMPOTENCY_KEY_RETENTION_DAYS": os.environ.get("IDEMPOTENCY_KEY_RETENTION_DAYS", "36500"),
        "PYTHONPATH": str(ROOT),
    }


async def create_databases(pg: EmbeddedPostgres, names: list[str]) -> set[str]:
    """Create the missing databases; returns the names that existed already (kept from an earlier run)."""
    conn = await asyncpg.connect(pg.dsn())
    try:
        existing = {r["datname"] for r in await conn.fetch("SELECT datname FROM pg_database")}
        for name in names:
            if name not in existing:
                await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return existing & set(names)


def topic_config(topic: str) -> dict[str, str]:
    """The cleanup policy and retention the cluster gives a topic (deploy/k8s/base/kafka/topics.yaml; a test keeps
    them equal): time retention, never compaction. The memory-only broker loses everything on a restart anyway."""
    days = DEAD_LETTER_RETENTION_DAYS if topic.startswith("posyandu.dlq.") else RETENTION_DAYS.get(topic)
    return {"cleanup.policy": "delete", "retention.ms": str(-1 if days is None else days * 86_400_000)}


async def create_topics(bootstrap_servers: str, topics: list[str], partitions: int = TOPIC_PARTITIONS) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [NewTopic(t, partitions, 1, topic_configs=topic_config(t)) for t in topics if t not in existing]
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


def dev_tokens(demo_posyandu: list[str], demo_agency: str | None) -> dict[str, str]:
    """One token per role, scoped to the demo data (kader of Gambir's posyandu, pembina of Jakarta Pusat).

    They live LOCAL_TOKEN_HOURS: printed on a terminal and signed with a published secret. A role whose demo data
    is missing gets no token rather than one the services refuse; `make token` mints any other.
    """
    tokens = {"admin": local_token("admin", sub="admin-dev")}
    if demo_posyandu:
        tokens["kader"] = local_token("kader", sub="kader-dev", posyandu=demo_posyandu)
    if demo_agency:
        tokens["opd"] = local_token("opd", sub="opd-dev", agency=demo_agency, fields=["kesehatan"])
    tokens["pembina"] = local_token("pembina", sub="pembina-dev", region="3171")
    tokens["service"] = local_token("service", sub="service-dev")
    return tokens


def demo_reference_date(path: Path | None = None) -> date:
    """The date the household demo's dates are relative to: today on the first run, then kept in .data/.

    A later `make run` must build the same request bodies, or the demo's Idempotency-Keys would not replay.
    """
    path = path or DATA / "household-demo-reference-date"
    with contextlib.suppress(FileNotFoundError, ValueError):
        return date.fromisoformat(path.read_text().strip())
    today = date.today()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(today.isoformat())
    return today


async def load_demo(registry_url: str, household_url: str, households: int = 300) -> dict[str, str]:
    from services.household import demo as household_demo
    from services.registry import demo as registry_demo

    admin = mint_token(DEV_JWT_SECRET, Role.ADMIN, sub="demo-loader")
    async with httpx.AsyncClient(base_url=registry_url, timeout=30) as registry:
        ids = await registry_demo.load(registry, admin)
        # The household service learns the posyandu from the registry's events: the loader waits for them.
        async with httpx.AsyncClient(base_url=household_url, timeout=60) as household:
            try:
                summary = await household_demo.load(
                    household, registry, admin_token=admin, households=households,
                    reference_date=demo_reference_date(), wait_seconds=90) if households else None
            except household_demo.DemoLoadError as exc:
                # The stack stays up without the household demo. A likely cause: the registry's data (.data/pg)
                # predates the outbox's kept history, so the fresh broker never got the events announcing it.
                hint = ("\n  (if .data/pg comes from an older version, stop the stack and remove .data/pg to start "
                        "afresh)") if "did not learn" in str(exc) else ""
                print(f"WARNING: household demo not loaded: {exc}{hint}", file=sys.stderr, flush=True)
                summary = None
    with_households = summary.posyandu_households if summary is not None else {}
    if summary is not None:
        print(household_demo.describe(summary), flush=True)
    # The kader token serves Gambir's first demo posyandu, preferring one that has demo households.
    gambir = [pid for code, pid in sorted(ids.posyandu.items()) if code.startswith("P3171")]
    posyandu = [pid for pid in gambir if with_households.get(pid)] or gambir
    agency = ids.agencies.get("Dinas Kesehatan Kota Administrasi Jakarta Pusat")
    return dev_tokens(posyandu[:1], agency)


def start_service(name: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """`python -m services.<name> serve` in a session of its own (the terminal's Ctrl-C is the stack's to handle),
    logging to .data/<name>.log, and stopped by Linux if the stack dies without stopping it."""
    with open(DATA / f"{name}.log", "ab") as log:
        return subprocess.Popen([sys.executable, "-m", f"services.{name}", "serve"], env=env, cwd=ROOT, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=_die_with_parent)


def stop_everything(processes: dict[str, subprocess.Popen[bytes]], broker: EmbeddedBroker,
                    pg: EmbeddedPostgres) -> None:
    """Stop the services together (SIGTERM, SIGKILL for those still there after half of STOP_SECONDS), then the
    broker, then PostgreSQL (a fast shutdown, an immediate one if that does not finish in the time left)."""
    deadline = time.monotonic() + STOP_SECONDS
    services_deadline = time.monotonic() + STOP_SECONDS / 2
    for process in processes.values():
        if process.poll() is None:
            process.terminate()
    for process in processes.values():
        try:
            process.wait(max(0.0, services_deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    broker.stop(timeout=2)
    pg.stop(timeout=max(1.0, deadline - time.monotonic()))


def main() -> None:
    DATA.mkdir(parents=True, exist_ok=True)
    pg = EmbeddedPostgres(DATA / "pg")
    port = int(os.environ.get("KAFKA_PORT", "9092"))
    broker = EmbeddedBroker(port if _port_free(port) else free_port(), logfile=DATA / "broker.log")
    households = int(os.environ.get("STACK_DEMO_HOUSEHOLDS", "300"))
    processes: dict[str, subprocess.Popen[bytes]] = {}

    def interrupt(*_: object) -> None:
        # Raised wherever the stack is, also inside asyncio.run (which then cancels its tasks): nothing it was
        # doing can hold the stop up, unlike asyncio's own Ctrl-C handling, whose cancellation a task may swallow.
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)
    crashed = None
    try:
        print(f"starting PostgreSQL ({DATA / 'pg'}) and the broker ...", flush=True)
        pg.start()
        broker.start()
        asyncio.run(create_databases(pg, [s.name for s in SERVICES]))
        asyncio.run(create_topics(broker.bootstrap_servers, [*ALL_TOPICS, *INTERNAL_TOPICS]))
        for svc in SERVICES:
            env = service_env(svc.name, svc.port, pg, broker)
            subprocess.run([sys.executable, "-m", f"services.{svc.name}", "migrate"], env=env, check=True, cwd=ROOT)
            processes[svc.name] = start_service(svc.name, env)
        urls = {s.name: f"http://127.0.0.1:{s.port}" for s in SERVICES}
        for url in urls.values():
            asyncio.run(wait_ready(url))
        print("loading the demo data ...", flush=True)
        tokens = asyncio.run(load_demo(urls["registry"], urls["household"], households))
        (DATA / "dev-tokens.json").write_text(json.dumps(tokens, indent=2))
        (DATA / "stack.json").write_text(json.dumps(
            {"kafka_bootstrap_servers": broker.bootstrap_servers, "services": urls,
             "database_socket_dir": str(pg.socket_dir)}, indent=2))
        print("\nThe posyandu stack is running:")
        for name, url in urls.items():
            print(f"  {name:<10} {url}/docs   (events: {url}/asyncapi.json)")
        if "reporting" in urls:
            print(f"  dashboard  {urls['reporting']}/dashboard?token=<a token below>")
            print(f"  SPM report {urls['reporting']}/api/v1/spm/matrix?format=xlsx   (Bearer token; ?region=&year=)")
        print(f"  kafka      {broker.bootstrap_servers}")
        print(f"  postgres   {pg.dsn('<service>')}")
        print(f"\nBearer tokens, valid {LOCAL_TOKEN_HOURS} h (also in {DATA / 'dev-tokens.json'}; "
              "`make token` mints others):")
        for role, token in tokens.items():
            print(f"  {role:<8} {token}")
        print(f"\nLogs in {DATA}/*.log. Ctrl-C stops everything.", flush=True)
        while crashed is None:
            time.sleep(0.5)
            crashed = next((name for name, p in processes.items() if p.poll() is not None), None)
        print(f"\na service exited unexpectedly; see {DATA / crashed}.log. Stopping the others ...",
              file=sys.stderr, flush=True)
    except KeyboardInterrupt:
        print("\nstopping ...", flush=True)
    finally:
        # A second Ctrl-C or SIGTERM must not cut the clean-up short and leave servers behind.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stop_everything(processes, broker, pg)
    if crashed is not None:
        sys.exit(1)
    print("stopped.", flush=True)


def _port_free(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


if __name__ == "__main__":
    main()
