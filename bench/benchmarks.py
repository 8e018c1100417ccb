"""The benchmarks. Each measures the system and, in the same run on the same machine, a raw baseline."""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import orjson
from aiokafka import AIOKafkaProducer
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from bench.body_server import BodyServer
from bench.gen import HouseholdRow, Identifiers, households, households_for_members
from bench.measure import (
    Forwarder,
    Result,
    Results,
    TopicWatcher,
    latency_results,
    proc_status_kb,
    reset_peak_rss,
)
from bench.stack import ROOT, ROUNDTRIP_TOPIC, SECOND_HOP_TOPIC, BenchStack, http_ok, progress, wait_for, wait_quiet
from deploy.local.stack import create_topics, service_env
from services.household.households import registration as household_registration
from services.household.households.schemas import HouseholdCreate
from services.household.needs.service import needs_of_new_household
from services.reporting.indicators import repository
from services.reporting.indicators.periods import parse_period
from services.reporting.indicators.repository import Scope
from services.reporting.summaries import reads
from services.reporting.summaries.contributions import within_stated_error
from shared.auth import Principal, Role
from shared.categories import CATEGORIES
from shared.db import sqlalchemy_url
from shared.events import household as hev
from shared.events.topics import HOUSEHOLD_TOPIC, SpmField, referral_topic
from shared.outbox import outbox_row

FIELD = "pekerjaan-umum"
CATEGORY = "pekerjaan-umum.drinking-water"


@dataclass
class Context:
    stack: BenchStack
    ids: Identifiers
    village: str
    posyandu_id: str
    kader: dict[str, str]
    admin: dict[str, str]
    results: Results


# ---------------------------------------------------------------- 1. registration


def _raw_registration(h: HouseholdRow, today: date) -> tuple[Any, ...]:
    """The parameters of the registration's own write statement for `h`: the same rows, duplicate check, needs,
    outbox rows and audit row the service writes (built here outside the timing: the raw side does the database
    work only)."""
    payload = HouseholdCreate.model_validate(h.body())
    principal = Principal(sub="bench", role=Role.KADER, posyandu_ids=frozenset({payload.posyandu_id}))
    household = household_registration.new_household(principal, payload, datetime.now(UTC))
    members = household_registration.new_members(household, payload)
    needs = needs_of_new_household(household, members, today=today)
    outbox = [outbox_row(e) for e in household_registration.events_of(household, members, needs)]
    audit = (principal.sub, principal.role.value, None, ["kk_number", "members", "nik"])
    return household_registration.write_arguments(household, members, needs, outbox, audit)


#: The registration's write statement with its outbox rows marked published, so that the relay leaves the raw
#: side's events alone (the service's are relayed and consumed; the raw side measures the database work).
_RAW_WRITE = household_registration.write_statement(audited=True).replace(
    "INSERT INTO outbox (event_id, event_type, topic, key, payload)\n  SELECT u.event_id, u.event_type, u.topic, "
    "u.key, u.payload",
    "INSERT INTO outbox (event_id, event_type, topic, key, payload, published_at)\n  SELECT u.event_id, "
    "u.event_type, u.topic, u.key, u.payload, now()")
assert "published_at" in _RAW_WRITE


async def _raw_register(conn: asyncpg.Connection, h: HouseholdRow, args: tuple[Any, ...]) -> None:
    """One raw transaction of a registration's database work: the posyandu and village lookup, then the write
    (household, KK history, members, duplicate flags against the village, needs, outbox, audit row)."""
    async with conn.transaction():
        await conn.fetchrow(household_registration.LOOKUP, uuid.UUID(h.posyandu_id), h.village_code)
        households, members = await conn.fetchrow(_RAW_WRITE, *args)
    if households != 1 or members != len(h.members):
        raise RuntimeError(f"raw registration refused: {households} households, {members} members written")


WARM_HOUSEHOLDS = 200  # registered before the timing, so that the village's tables have a size to plan for


async def registration(ctx: Context, count: int, concurrency: int) -> list[str]:
    """POST /api/v1/households from `concurrency` clients vs. raw asyncpg transactions of the same rows."""
    name = "1. household registration"
    progress(f"{name}: {count} households through the API, {concurrency} concurrent clients ...")
    api_rows = households(ctx.ids, ctx.village, ctx.posyandu_id, count, seed=1)
    raw_rows = households(ctx.ids, ctx.village, ctx.posyandu_id, count, seed=1)
    queue = list(api_rows)
    latencies: list[float] = []
    created: list[str] = []

    async with httpx.AsyncClient(base_url=ctx.stack.url("household"), timeout=60) as client:
        async def worker() -> None:
            while queue:
                h = queue.pop()
                t0 = time.perf_counter()
                response = await client.post("/api/v1/households", json=h.body(), headers=ctx.kader)
                latencies.append((time.perf_counter() - t0) * 1000)
                if response.status_code != 201:
                    raise RuntimeError(f"registration: {response.status_code} {response.text[:300]}")
                created.append(response.json()["id"])

        # Warm up outside the measurement (connections, statement caches), then ANALYZE: the tables were analyzed
        # empty, and until autovacuum's first analyze of the grown tables (up to a minute) PostgreSQL plans the
        # write statement on those statistics, with sequential scans (the duplicate check's of the members) whose
        # cost grows with every registration (bench/analysis.md, 2026-12-03). A region's database holds
        # households and its statistics say so; that steady state is what is timed.
        warm = list(households(ctx.ids, ctx.village, ctx.posyandu_id, WARM_HOUSEHOLDS, seed=99))
        for start in range(0, len(warm), concurrency):
            await asyncio.gather(*(client.post("/api/v1/households", json=h.body(), headers=ctx.kader)
                                   for h in warm[start:start + concurrency]))
        conn = await ctx.stack.connect("household")
        try:
            await conn.execute("ANALYZE")
        finally:
            await conn.close()
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        api_seconds = time.perf_counter() - started

    progress(f"{name}: the same database work as raw asyncpg transactions (lookup, then the registration's write "
             "statement) ...")
    pool = await asyncpg.create_pool(ctx.stack.dsn("household"), min_size=concurrency, max_size=concurrency)
    try:
        today = date.today()
        prepared = {h.id: _raw_registration(h, today) for h in raw_rows}
        raw_queue = list(raw_rows)
        raw_latencies: list[float] = []

        async def raw_worker() -> None:
            async with pool.acquire() as conn:
                while raw_queue:
                    h = raw_queue.pop()
                    t0 = time.perf_counter()
                    await _raw_register(conn, h, prepared[h.id])
                    raw_latencies.append((time.perf_counter() - t0) * 1000)

        started = time.perf_counter()
        await asyncio.gather(*(raw_worker() for _ in range(concurrency)))
        raw_seconds = time.perf_counter() - started
    finally:
        await pool.close()
    members = sum(len(h.members) for h in api_rows)
    base = ("raw asyncpg: one transaction per household with the service's own statements (posyandu and village "
            "lookup; household, KK history, members, duplicate check and flags, needs, outbox rows, audit row)")
    ctx.results.add(Result(name, "throughput", count / api_seconds, count / raw_seconds, "households/s", "higher",
                           base, count, f"{members} members, {concurrency} concurrent clients"))
    ctx.results.add(Result(name, "member throughput", members / api_seconds, members / raw_seconds, "members/s",
                           "higher", base, members))
    for r in latency_results(name, latencies, raw_latencies, base):
        ctx.results.add(r)
    return created


# ---------------------------------------------------------------- 2. bulk import


async def bulk_import(ctx: Context, members: int) -> None:
    """The import job (POST /api/v1/households/import, set-based, chunk by chunk) against a raw COPY of exactly the
    rows it wrote: households, KK history, members, needs, duplicate flags and outbox rows, read back and copied
    again under fresh ids and identifiers, in one transaction."""
    name = "2. bulk import"
    progress(f"{name}: {members} members through POST /api/v1/households/import (an import job) ...")
    rows = households_for_members(ctx.ids, ctx.village, ctx.posyandu_id, members, seed=2)

    async def body() -> Any:
        # Streamed: the bench holds the households, not a second copy of the file.
        for start in range(0, len(rows), 2000):
            yield b"".join(orjson.dumps(r) + b"\n" for h in rows[start:start + 2000] for r in h.import_rows())

    pid = ctx.stack.pid("household")
    rss_before = proc_status_kb(pid, "VmRSS")
    reset = reset_peak_rss(pid)
    async with httpx.AsyncClient(base_url=ctx.stack.url("household"), timeout=max(600.0, members * 0.05)) as client:
        started = time.perf_counter()
        response = await http_ok(client, "POST", "/api/v1/households/import", content=body(),
                                 headers={**ctx.admin, "Content-Type": "application/x-ndjson"})
        seconds = time.perf_counter() - started
        report = response.json()
        job = (await http_ok(client, "GET", f"/api/v1/imports/{report['job_id']}", headers=ctx.admin)).json()
    if report["members_imported"] != members:
        raise RuntimeError(f"import: {report['members_imported']} of {members} imported: {report['errors'][:3]}")
    peak = proc_status_kb(pid, "VmHWM")

    progress(f"{name}: raw COPY of the rows the import wrote (households, KK history, members, needs, flags, "
             "outbox) ...")
    conn = await ctx.stack.connect("household")
    try:
        tables = await _imported_rows(conn, [h.kk_number for h in rows])
        started = time.perf_counter()
        async with conn.transaction():
            for table, (columns, records) in tables.items():
                await conn.copy_records_to_table(table, records=records, columns=columns)
        raw_seconds = time.perf_counter() - started
    finally:
        await conn.close()
    counts = ", ".join(f"{len(records)} {table}" for table, (_, records) in tables.items())
    base = ("raw COPY of the same rows the import wrote (households, kk_number_history, members, needs, "
            "duplicate_flags, outbox), one transaction, no checks")
    ctx.results.add(Result(name, "throughput", members / seconds, members / raw_seconds, "members/s", "higher", base,
                           members, f"{len(rows)} households in {job['chunks_committed']} chunks; {counts}; "
                           f"{seconds:.1f} s vs {raw_seconds:.2f} s"))
    ctx.results.add(Result(name, "service peak RSS during import", peak / 1024, rss_before / 1024, "MiB", "lower",
                           "the service's RSS just before the import (VmRSS)", None,
                           "VmHWM of the household process" + ("" if reset else " since start (reset not allowed)")))


def _fresh(value: str) -> str:
    """A KK number or NIK no live row holds: the same length, another (impossible) province code."""
    return "99" + value[2:]


async def _imported_rows(conn: asyncpg.Connection, kks: list[str]) -> dict[str, tuple[list[str], list[Any]]]:
    """The import's rows, as COPY records under fresh ids, KK numbers and NIKs (the unique indexes stay live)."""
    ids: dict[Any, uuid.UUID] = {}

    def fresh_id(old: Any) -> uuid.UUID:
        return ids.setdefault(old, uuid.uuid4())

    out: dict[str, tuple[list[str], list[Any]]] = {}
    households = await conn.fetch("SELECT * FROM households WHERE kk_number = ANY($1::text[])", kks)
    household_ids = [h["id"] for h in households]
    plan: dict[str, tuple[list[asyncpg.Record], dict[str, Callable[[Any], Any]]]] = {
        "households": (households, {"id": fresh_id, "kk_number": _fresh}),
        "kk_number_history": (await conn.fetch("SELECT * FROM kk_number_history WHERE household_id = ANY($1)",
                                               household_ids), {"household_id": fresh_id, "kk_number": _fresh}),
        "members": (await conn.fetch("SELECT * FROM members WHERE household_id = ANY($1)", household_ids),
                    {"id": fresh_id, "household_id": fresh_id, "nik": lambda v: v and _fresh(v)}),
        "needs": (await conn.fetch("SELECT * FROM needs WHERE household_id = ANY($1)", household_ids),
                  {"id": fresh_id, "household_id": fresh_id, "member_id": lambda v: v and fresh_id(v)}),
        "duplicate_flags": (await conn.fetch(
            "SELECT f.* FROM duplicate_flags f JOIN members m ON m.id = f.member_id WHERE m.household_id = ANY($1)",
            household_ids), {"id": fresh_id, "member_id": fresh_id, "candidate_id": fresh_id}),
        "outbox": (await conn.fetch("SELECT * FROM outbox WHERE key = ANY($1::text[])",
                                    [str(i) for i in household_ids]),
                   {"event_id": lambda v: uuid.uuid4(), "key": lambda v: str(fresh_id(uuid.UUID(v)))}),
    }
    for table, (records, change) in plan.items():
        columns = [c for c in (records[0].keys() if records else []) if not (c == "id" and table in (
            "kk_number_history", "outbox"))]
        out[table] = (columns, [tuple(change[c](r[c]) if c in change else r[c] for c in columns) for r in records])
    return out


# ---------------------------------------------------------------- 3/4. referral latency


def _referral_keys(value: bytes) -> list[str]:
    try:
        body = orjson.loads(value)
    except orjson.JSONDecodeError:
        return []
    if body.get("type") != "posyandu.referral.created.v1":
        return []
    return [str(body.get("subject")), "household:" + str(body.get("data", {}).get("household_id"))]


async def raw_roundtrip(ctx: Context, count: int, *, hops: int = 1) -> list[float]:
    """Produce one record (acks=all) and wait until a plain consumer (fetch_max_wait_ms 10) has it, `count` times,
    one at a time. With two hops a plain consumer of the first topic sends each record on to a second (acks=all,
    awaited) and the time is until a plain consumer of that one has it."""
    bootstrap = ctx.stack.broker.bootstrap_servers
    watcher = TopicWatcher(bootstrap, SECOND_HOP_TOPIC if hops == 2 else ROUNDTRIP_TOPIC, lambda v: [v.decode()])
    forwarder = Forwarder(bootstrap, ROUNDTRIP_TOPIC, SECOND_HOP_TOPIC) if hops == 2 else None
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=False)
    await watcher.start()
    if forwarder is not None:
        await forwarder.start()
    await producer.start()
    samples: list[float] = []
    try:
        for _ in range(count):
            key = uuid.uuid4().hex
            t0 = time.perf_counter()
            await producer.send_and_wait(ROUNDTRIP_TOPIC, key.encode(), key=key.encode())
            samples.append((await watcher.arrival(key, 30) - t0) * 1000)
    finally:
        await producer.stop()
        if forwarder is not None:
            await forwarder.stop()
        await watcher.stop()
    return samples


async def _measured_baseline(ctx: Context, name: str, count: int, hops: int) -> list[float]:
    progress(f"{name}: raw baseline, {count} {'two-hop ' if hops == 2 else ''}produce-to-consume round trips ...")
    meter = ctx.stack.meter("raw baseline")
    samples = await raw_roundtrip(ctx, count, hops=hops)
    ctx.results.record_load(name, meter.stop(count))
    return samples


async def _known_to_referral(ctx: Context, household_ids: list[str]) -> None:
    conn = await ctx.stack.connect("referral")
    try:
        await wait_for(conn, "SELECT count(*) FROM known_households WHERE id = ANY($1::uuid[])", household_ids,
                       expected=len(household_ids), within=300, what="referral service learning the households")
    finally:
        await conn.close()


async def referral_end_to_end(ctx: Context, household_ids: list[str], roundtrips: int) -> None:
    """POST /api/v1/referrals until a plain consumer of the field topic has the event (request, transaction,
    relay wake-up, publish, fetch), against one raw produce-to-consume hop; one referral at a time."""
    name = "3. referral end to end"
    raw = await _measured_baseline(ctx, name, roundtrips, hops=1)
    progress(f"{name}: {len(household_ids)} manual referrals, POST until a plain consumer of the field topic "
             "has the event ...")
    await _known_to_referral(ctx, household_ids)
    watcher = TopicWatcher(ctx.stack.broker.bootstrap_servers, referral_topic(FIELD), _referral_keys)
    await watcher.start()
    samples: list[float] = []
    missed = 0
    meter = ctx.stack.meter("API")
    try:
        async with httpx.AsyncClient(base_url=ctx.stack.url("referral"), timeout=30) as client:
            for hid in household_ids:
                t0 = time.perf_counter()
                response = await http_ok(client, "POST", "/api/v1/referrals", headers=ctx.kader, json={
                    "household_id": hid, "spm_field": FIELD, "category": CATEGORY, "reason": "bench"})
                try:
                    samples.append((await watcher.arrival(response.json()["id"], 30) - t0) * 1000)
                except TimeoutError:
                    missed += 1
    finally:
        ctx.results.record_load(name, meter.stop(len(household_ids)))
        await watcher.stop()
    base = "raw aiokafka produce (acks=all) to a plain consumer, fetch_max_wait_ms 10, one at a time"
    for r in latency_results(name, samples, raw, base, f"{missed} not received within 30 s" if missed else ""):
        ctx.results.add(r)


async def need_to_referral(ctx: Context, household_ids: list[str]) -> None:
    """A profile PUT that detects a need until the agency's plain consumer has the referral (two services, two
    outboxes, two hops), against two raw hops (produce, a plain consumer producing on, a plain consumer)."""
    name = "4. need detected to agency"
    raw = await _measured_baseline(ctx, name, len(household_ids), hops=2)
    progress(f"{name}: {len(household_ids)} profile PUTs that detect a need, until the agency consumer has the "
             "referral ...")
    await _known_to_referral(ctx, household_ids)
    watcher = TopicWatcher(ctx.stack.broker.bootstrap_servers, referral_topic(FIELD), _referral_keys)
    await watcher.start()
    samples: list[float] = []
    missed = 0
    meter = ctx.stack.meter("API")
    try:
        async with httpx.AsyncClient(base_url=ctx.stack.url("household"), timeout=30) as client:
            for hid in household_ids:
                t0 = time.perf_counter()
                await http_ok(client, "PUT", f"/api/v1/households/{hid}/profiles/{FIELD}", headers=ctx.kader,
                              json={"household": {"drinking_water_source": "surface-water"}})
                try:
                    samples.append((await watcher.arrival(f"household:{hid}", 30) - t0) * 1000)
                except TimeoutError:
                    missed += 1
    finally:
        ctx.results.record_load(name, meter.stop(len(household_ids)))
        await watcher.stop()
    base = ("two raw hops: aiokafka produce (acks=all), a plain consumer that produces each record on to a "
            "second topic (acks=all), a plain consumer of that; fetch_max_wait_ms 10, one at a time")
    for r in latency_results(name, samples, raw, base, f"{missed} not received within 30 s" if missed else ""):
        ctx.results.add(r)


# ---------------------------------------------------------------- 5. reporting


async def drain_outboxes(ctx: Context, within: float = 3600) -> None:
    """Wait until no service's outbox holds an unpublished event: after a full-scale import the household relay
    still has a million or more to send, and a consumer timing taken behind them would time the backlog."""
    deadline = time.perf_counter() + within
    for service in ("registry", "household", "referral"):
        conn = await ctx.stack.connect(service)
        try:
            while (left := await conn.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL")) > 0:
                if time.perf_counter() > deadline:
                    raise TimeoutError(f"{service}: {left} events still unpublished after {within}s")
                progress(f"  {service}: {left} events still to publish ...")
                await asyncio.sleep(30)
        finally:
            await conn.close()


async def consumed_event_rate(ctx: Context, events: int) -> None:
    """Produce `events` member-added events and time until the reporting projection holds every member."""
    name = "5. reporting projections"
    conn = await ctx.stack.connect("reporting")
    try:
        progress(f"{name}: waiting until the relays have published every earlier event and reporting has "
                 "consumed them ...")
        await drain_outboxes(ctx)
        await wait_quiet(conn, "SELECT count(*) FROM inbox", settle=10, within=1800, what="reporting inbox")
        # Families of four (a KK has three to four members on average), keyed by household as the service keys
        # them: a consumer recomputes a household's contribution from all its members, so one household of 20,000
        # members (the stream until 2026-12-01) timed a case no KK has.
        households = [uuid.uuid4() for _ in range(-(-events // 4))]
        produced: list[tuple[bytes, bytes, list[tuple[str, bytes]]]] = []
        member_ids: list[uuid.UUID] = []
        for i in range(events):
            mid, household_id = uuid.uuid4(), households[i // 4]
            member_ids.append(mid)
            ev = hev.MEMBER_ADDED.new(hev.MemberData(
                member_id=mid, household_id=household_id, nik_masked=None, sex="male" if i % 2 else "female",
                birth_date=date(1990, 1, 1) + timedelta(days=i % 9000), relationship="child", pregnant=False,
                disability="none", status="active", version=1), subject=str(household_id), regioncode=ctx.village)
            produced.append((str(household_id).encode(), ev.to_bytes(), ev.kafka_headers()))
        progress(f"{name}: producing {events} member-added events, timing until the projection has them ...")
        producer = await _producer(ctx)
        try:
            started = time.perf_counter()
            await _send_all(producer, HOUSEHOLD_TOPIC, produced)
            await wait_for(conn, "SELECT count(*) FROM members WHERE id = ANY($1::uuid[])", member_ids,
                           expected=events, within=900, what="reporting projection of the events")
            seconds = time.perf_counter() - started
        finally:
            await producer.stop()
    finally:
        await conn.close()
    progress(f"{name}: raw baseline: the same events produced the same way while a plain consumer (a process of "
             "its own) reads them and upserts them with executemany into scratch tables ...")
    raw_seconds, raw_consume_only = await _raw_consume_upsert(ctx, produced)
    ctx.results.add(Result(name, "events consumed into projections", events / seconds, events / raw_seconds,
                           "events/s", "higher",
                           "raw aiokafka consumer in a process of its own: per fetch one transaction with an inbox "
                           "claim (unnest) and an asyncpg executemany upsert of the claimed events into scratch "
                           "tables; both timed from the first send of the same events (same producer) until the "
                           "last row is written", events,
                           "member-added events on the household topic (3 partitions); the service also keeps the "
                           f"summaries (issue 13). The raw consumer reading the same events already on the topic "
                           f"(consumption only): {events / raw_consume_only:.0f} events/s"))


async def _producer(ctx: Context) -> AIOKafkaProducer:
    """The producer of section 5's events, sending as a relay would, for the service and its baseline alike."""
    producer = AIOKafkaProducer(bootstrap_servers=ctx.stack.broker.bootstrap_servers, acks="all",
                                enable_idempotence=False, linger_ms=5)
    await producer.start()
    return producer


async def _send_all(producer: AIOKafkaProducer, topic: str,
                    produced: list[tuple[bytes, bytes, list[tuple[str, bytes]]]]) -> None:
    for key, value, headers in produced:
        await producer.send(topic, value, key=key, headers=headers)
    await producer.flush()


async def _raw_consume_upsert(ctx: Context, produced: list[tuple[bytes, bytes, list[tuple[str, bytes]]]],
                              ) -> tuple[float, float]:
    """The seconds from the first send until the raw consumer (bench/raw_consumer.py, started and at the topic's
    end first) has written the last row, and the seconds it then takes to read them again, all on the topic."""
    topic = f"bench.events.{uuid.uuid4().hex[:8]}"
    await create_topics(ctx.stack.broker.bootstrap_servers, [topic])
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.raw_consumer", ctx.stack.broker.bootstrap_servers, topic,
        ctx.stack.dsn("reporting"), str(len(produced)), cwd=ROOT, stdout=asyncio.subprocess.PIPE)
    assert process.stdout is not None
    stdout = process.stdout
    producer = await _producer(ctx)
    try:
        async def line(expected: str, within: float) -> str:
            got = (await asyncio.wait_for(stdout.readline(), within)).decode().strip()
            if not got.startswith(expected):
                raise RuntimeError(f"raw consumer: expected {expected!r}, got {got!r} (exit {process.returncode})")
            return got

        await line("ready", 60)
        started = time.perf_counter()
        await _send_all(producer, topic, produced)
        await line("done", 900)
        seconds = time.perf_counter() - started
        consume_only = float((await line("consumed-only", 900)).split()[1])
        await asyncio.wait_for(process.wait(), 60)
    finally:
        await producer.stop()
        if process.returncode is None:
            process.kill()
            await process.wait()
    return seconds, consume_only


async def load_projections(ctx: Context, members: int, referrals: int, seed: int, label: str = "one size") -> None:
    """COPY synthetic rows into the reporting projections (households, members, profiles, measurements, needs and
    referrals), then rebuild the summaries from them with the service's command."""
    rnd = random.Random(seed)
    conn = await ctx.stack.connect("reporting")
    try:
        villages = [r["code"] for r in await conn.fetch("SELECT code FROM regions WHERE level = 'village'")]
        posyandu = [r["id"] for r in await conn.fetch("SELECT id FROM posyandu")]
        agencies = await conn.fetch("SELECT id, jurisdiction_code, spm_fields FROM agencies WHERE status='active'")
        route: dict[tuple[str, str], uuid.UUID] = {}
        for a in sorted(agencies, key=lambda a: -len(a["jurisdiction_code"])):
            for f in a["spm_fields"]:
                route.setdefault((a["jurisdiction_code"], f), a["id"])
        by_field: dict[str, list[str]] = {}
        for code, cat in CATEGORIES.items():
            by_field.setdefault(str(cat.spm_field), []).append(code)
        now = datetime.now(UTC)
        year_start = datetime(now.year, 1, 1, tzinfo=UTC)
        span = (now - year_start).total_seconds()
        hh: list[tuple[Any, ...]] = []
        mm: list[tuple[Any, ...]] = []
        while len(mm) < members:
            hid, village = uuid.uuid4(), rnd.choice(villages)
            first = year_start - timedelta(days=rnd.randrange(1, 700))
            hh.append((hid, village, rnd.choice(posyandu), "active", 1, first))
            for _ in range(min(rnd.randrange(2, 6), members - len(mm))):
                born = (date(1950, 1, 1) + timedelta(days=rnd.randrange(27_000)) if rnd.random() < 0.8 else
                        year_start.date() - timedelta(days=rnd.randrange(1, 5 * 365)))
                mm.append((uuid.uuid4(), hid, rnd.choice(("male", "female")), born, False, "none", "active", 1,
                           first))
        needs: list[tuple[Any, ...]] = []
        refs: list[tuple[Any, ...]] = []
        statuses = ("requested", "received", "accepted", "in-progress", "completed", "rejected", "cancelled")
        for _ in range(referrals):
            h = rnd.choice(hh)
            field = rnd.choice(sorted(by_field))
            category = rnd.choice(by_field[field])
            urgency = str(CATEGORIES[category].default_urgency)
            created = year_start + timedelta(seconds=rnd.random() * span)
            resolved = created + timedelta(days=rnd.randrange(1, 60)) if rnd.random() < 0.3 else None
            needs.append((uuid.uuid4(), h[0], h[1], field, category, urgency, created,
                          resolved if resolved and resolved < now else None))
            status = rnd.choice(statuses)
            agency = route.get((h[1][:4], field)) or route.get((h[1][:2], field))
            responded = created + timedelta(hours=rnd.randrange(1, 200)) if status != "requested" else None
            closed = (created + timedelta(hours=rnd.randrange(24, 900))
                      if status in ("completed", "rejected", "cancelled") else None)
            refs.append((uuid.uuid4(), h[1], h[2], field, category, urgency, status, agency, 2, created,
                         created + timedelta(days=3), created + timedelta(days=30), responded, closed))
        profiles, measured = _profiles_and_measurements(rnd, hh, mm, year_start)
        progress(f"loading {len(hh)} households, {len(mm)} members, {len(profiles)} profile versions, "
                 f"{len(measured)} measurements, {len(needs)} needs, {len(refs)} referrals into the reporting "
                 "projections with COPY ...")
        started = time.perf_counter()
        async with conn.transaction():
            await conn.copy_records_to_table("households", records=hh, columns=[
                "id", "village_code", "posyandu_id", "status", "version", "first_seen_at"])
            await conn.copy_records_to_table("members", records=mm, columns=[
                "id", "household_id", "sex", "birth_date", "pregnant", "disability", "status", "version",
                "first_seen_at"])
            await conn.copy_records_to_table("needs", records=needs, columns=[
                "id", "household_id", "village_code", "spm_field", "category", "urgency", "detected_at",
                "resolved_at"])
            await conn.copy_records_to_table("referrals", records=refs, columns=[
                "id", "village_code", "posyandu_id", "spm_field", "category", "urgency", "status", "agency_id",
                "version", "created_at", "respond_by", "complete_by", "responded_at", "closed_at"])
            await conn.copy_records_to_table("profile_versions", records=profiles, columns=[
                "household_id", "spm_field", "version", "observed_on", "event_time", "data", "decided"])
            await conn.copy_records_to_table("measurements", records=measured, columns=[
                "id", "household_id", "member_id", "measured_on", "age_days", "haz_class", "waz_class", "whz_class",
                "muac_class", "kms_signal"])
        await conn.execute("ANALYZE")
        progress(f"loaded in {time.perf_counter() - started:.1f} s; rebuilding the summaries from the projections "
                 "(python -m services.reporting rebuild-summaries) ...")
    finally:
        await conn.close()
    await _rebuild(ctx, label)


async def _rebuild(ctx: Context, label: str) -> None:
    """The summaries rebuilt from every projection row loaded so far, by the service's command in a process of its
    own (its peak RSS sampled), against a raw baseline of the same rows read and written."""
    name = f"5. reporting rebuild ({label})"
    env = {**service_env("reporting", ctx.stack.ports["reporting"], ctx.stack.pg, ctx.stack.broker),
           "LOG_LEVEL": "WARNING"}
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.reporting", "rebuild-summaries", cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    peak_kb = 0

    async def sample_rss() -> None:
        nonlocal peak_kb
        with contextlib.suppress(OSError, KeyError):
            while True:
                peak_kb = max(peak_kb, proc_status_kb(process.pid, "VmHWM"))
                await asyncio.sleep(0.2)

    sampler = asyncio.create_task(sample_rss())
    out, err = await process.communicate()
    seconds = time.perf_counter() - started
    sampler.cancel()
    if process.returncode != 0:
        raise RuntimeError(f"rebuild-summaries failed: {err.decode(errors='replace')[-2000:]}")
    counted = int(re.search(rb"of (\d+) aggregates", out).group(1))  # type: ignore[union-attr]
    conn = await ctx.stack.connect("reporting")
    try:
        for table in _SUMMARY_KEYS:
            await conn.execute(f"ANALYZE {table}")
        rows = {t: await conn.fetchval(f"SELECT count(*) FROM {t}") for t in _SUMMARY_KEYS}
        progress(f"{name}: {counted} aggregates in {seconds:.1f} s ({counted / seconds:.0f}/s, peak RSS "
                 f"{peak_kb // 1024} MiB, {rows} summary rows); raw baseline: the same rows read and written ...")
        raw_seconds = await _raw_rebuild(conn)
    finally:
        await conn.close()
    ctx.results.add(Result(name, "aggregates rebuilt per second", counted / seconds, counted / raw_seconds,
                           "aggregates/s", "higher",
                           "raw: every projection row the contributions read, read once (COPY out, one statement per "
                           "table), and the rebuilt summary rows written once into scratch tables (INSERT ... "
                           "SELECT, the primary keys built after)", counted,
                           f"python -m services.reporting rebuild-summaries in its own process, {seconds:.1f} s, "
                           f"peak RSS {peak_kb // 1024} MiB; {rows['summary_stocks']} stock, "
                           f"{rows['summary_flows']} flow, {rows['summary_agency_flows']} agency flow and "
                           f"{rows['summary_histograms']} histogram rows"))


#: The summary tables a rebuild writes (the answer rows aside), with their primary keys.
_SUMMARY_KEYS = {"summary_stocks": "level, region, month, key, born",
                 "summary_flows": "level, span, month, region, key",
                 "summary_agency_flows": "level, span, month, region, key",
                 "summary_histograms": "level, span, month, region, key"}


#: The projection columns the contributions read (summaries/store.py), each table once.
_REBUILD_READS = [
    "SELECT id, village_code, status, first_seen_at FROM households",
    "SELECT id, household_id, birth_date, pregnant, disability, status, first_seen_at FROM members",
    "SELECT household_id, spm_field, version, observed_on, event_time, data, decided FROM profile_versions",
    "SELECT id, household_id, member_id, visited_on, life_cycle_group, pregnant, kms_book_held FROM visits",
    "SELECT member_id, vaccine, given_on FROM doses WHERE NOT voided",
    "SELECT id, member_id, household_id, measured_on, age_days, haz_class, waz_class, whz_class, kms_signal "
    "FROM measurements",
    "SELECT merged_id FROM member_merges",
    "SELECT village_code, spm_field, category, detected_at, resolved_at FROM needs",
    "SELECT village_code, spm_field, category, status, agency_id, created_at, responded_at, closed_at, complete_by, "
    "overdue_at FROM referrals",
    "SELECT village_code, session_date FROM sessions"]


async def _raw_rebuild(conn: asyncpg.Connection) -> float:
    async def discard(chunk: bytes) -> None:
        return None

    started = time.perf_counter()
    for sql in _REBUILD_READS:
        await conn.copy_from_query(sql, output=discard)
    async with conn.transaction():
        for table, key in _SUMMARY_KEYS.items():
            await conn.execute(f"CREATE TABLE bench_{table} (LIKE {table})")
            await conn.execute(f"INSERT INTO bench_{table} SELECT * FROM {table} ORDER BY {key}")
            await conn.execute(f"ALTER TABLE bench_{table} ADD PRIMARY KEY ({key})")
        seconds = time.perf_counter() - started
        await conn.execute(f"DROP TABLE {', '.join(f'bench_{t}' for t in _SUMMARY_KEYS)}")
    return seconds


def _profiles_and_measurements(rnd: random.Random, hh: list[tuple[Any, ...]], mm: list[tuple[Any, ...]],
                               year_start: datetime) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Profiles for four households in five (four fields, the household service's verdicts with them) and a
    measurement or two this year for most children under five."""
    profiles: list[tuple[Any, ...]] = []
    members_of: dict[uuid.UUID, list[tuple[Any, ...]]] = {}
    for m in mm:
        members_of.setdefault(m[1], []).append(m)
    for h in hh:
        if rnd.random() >= 0.8:
            continue
        observed = (year_start + timedelta(days=rnd.randrange(0, 60))).date()
        at = datetime.combine(observed, datetime.min.time(), UTC)
        water = rnd.choice(("piped", "protected-well", "surface-water"))
        decile = rnd.randrange(1, 11)
        rtlh = rnd.random() < 0.2
        ids = [str(m[0]) for m in members_of.get(h[0], [])]
        for field, data, decided in (
                ("pekerjaan-umum", {"household": {"drinking_water_source": water, "toilet": "shared"}},
                 {"safe_water": water != "surface-water"}),
                ("perumahan-rakyat", {"household": {"floor": "earth" if rtlh else "ceramic-or-cement"}},
                 {"rtlh": rtlh}),
                ("sosial", {"household": {"dtsen_decile": decile, "aid_received": ["pkh"] if decile < 4 else []},
                            "members": {i: {"neglect_flags": []} for i in ids}}, {"low_decile": decile <= 4}),
                ("kesehatan", {"members": {i: {"immunization_status": "complete-for-age"} for i in ids}}, None)):
            profiles.append((h[0], field, 1, observed, at, orjson.dumps(data).decode(),
                             orjson.dumps(decided).decode() if decided else None))
    measured: list[tuple[Any, ...]] = []
    five_years_ago = year_start.date() - timedelta(days=5 * 365)
    for m in mm:
        if m[3] > five_years_ago and rnd.random() < 0.9:
            for _ in range(rnd.randrange(1, 3)):
                day = year_start.date() + timedelta(days=rnd.randrange(0, 60))
                measured.append((uuid.uuid4(), m[1], m[0], day, (day - m[3]).days,
                                 rnd.choice(("normal", "stunted")), "normal", rnd.choice(("normal", "wasted")), None,
                                 rnd.choice(("N", "T"))))
    return profiles, measured


# The read baseline's database half: a range lookup of the summary rows the read's answer is made of (its stocks
# up to the period's end and the period's flows, at each level and region the answer shows): today's stock sums per
# band (summary_answers, held for today), the year's flows of the regions and, for the matrix, of its agencies.
_LOOKUP_STOCKS = ("SELECT region, key, band, n FROM summary_answers WHERE level = $1 AND as_of = $4"
                  " AND region >= $2 AND region < $3")
_LOOKUP_FLOWS = ("SELECT region, key, n FROM summary_flows WHERE level = $1 AND span = 'Y' AND month = $4"
                 " AND region >= $2 AND region < $3")
_LOOKUP_AGENCY_FLOWS = ("SELECT region, key, n FROM summary_agency_flows WHERE level = $1 AND span = 'Y'"
                        " AND month = $4 AND region >= $2 AND region < $3")
_LOOKUP_HISTOGRAMS = ("SELECT region, key, buckets, counts FROM summary_histograms WHERE level = $1 AND span = 'Y'"
                      " AND month = $4 AND region >= $2 AND region < $3 AND key NOT LIKE 'a|%'")
_LOOKUP_AGENCY_HISTOGRAMS = _LOOKUP_HISTOGRAMS.replace("NOT LIKE", "LIKE")
_LOOKUP_HOUSEHOLD_FLOWS = _LOOKUP_FLOWS + " AND strpos(key, '|') = 0"


async def reporting_queries(ctx: Context, label: str, repeats: int, members: int, referrals: int) -> None:
    """Indicators (national; province 31 by regency) and the matrix of province 31, read from the summaries,
    against a range lookup of the answer's rows plus an authenticated GET of a body of the answer's size; the
    answers are checked once against the request-time GROUP BY statements (indicators/repository.py)."""
    name = f"5. reporting queries ({label})"
    year = datetime.now(UTC).year
    # Each read's answer rows: (statement, level) pairs within its region. The matrix of a province shows the
    # household counts of the province and of its regencies (stocks and the flows counted per household, no
    # referral counts nor histograms: reads.stock_values) and each agency's referral counts and histograms in
    # the province.
    def region_rows(level: int) -> list[tuple[str, int]]:
        return [(_LOOKUP_STOCKS, level), (_LOOKUP_FLOWS, level), (_LOOKUP_HISTOGRAMS, level)]

    queries = {
        "indicators national": ({"period": str(year)}, region_rows(0), ""),
        "indicators region=31 by=regency": ({"region": "31", "period": str(year), "by": "regency"},
                                            region_rows(4), "31"),
        "matrix region=31": ({"region": "31", "period": str(year)},
                             [(_LOOKUP_STOCKS, 2), (_LOOKUP_HOUSEHOLD_FLOWS, 2), (_LOOKUP_STOCKS, 4),
                              (_LOOKUP_HOUSEHOLD_FLOWS, 4), (_LOOKUP_AGENCY_FLOWS, 2), (_LOOKUP_AGENCY_HISTOGRAMS, 2)],
                             "31"),
    }
    await _check_against_group_by(ctx, name, year)
    conn = await ctx.stack.connect("reporting")
    try:
        async def lookup(rows: list[tuple[str, int]], prefix: str) -> float:
            t0 = time.perf_counter()
            for sql, level in rows:
                await conn.fetch(sql, level, prefix, prefix + ":", datetime.now(UTC).date() if sql is _LOOKUP_STOCKS
                                 else date(year, 1, 1))
            return (time.perf_counter() - t0) * 1000

        with BodyServer() as body_server:
            async with httpx.AsyncClient(base_url=ctx.stack.url("reporting"), timeout=120) as client, \
                    httpx.AsyncClient(base_url=body_server.url, timeout=120) as plain:
                for title, (params, rows, prefix) in queries.items():
                    path = "/api/v1/matrix" if title.startswith("matrix") else "/api/v1/indicators"
                    size = len((await http_ok(client, "GET", path, params=params, headers=ctx.admin)).content)
                    await lookup(rows, prefix)
                    await http_ok(plain, "GET", "/body", params={"n": size}, headers=ctx.admin)
                    samples: list[float] = []
                    baseline: list[float] = []
                    for _ in range(repeats):
                        t0 = time.perf_counter()
                        await http_ok(client, "GET", path, params=params, headers=ctx.admin)
                        samples.append((time.perf_counter() - t0) * 1000)
                        spent = await lookup(rows, prefix)
                        t0 = time.perf_counter()
                        await http_ok(plain, "GET", "/body", params={"n": size}, headers=ctx.admin)
                        baseline.append(spent + (time.perf_counter() - t0) * 1000)
                    base = ("range lookup of the answer's summary rows (asyncpg) + an authenticated GET returning a "
                            f"body of the answer's size ({size} bytes)")
                    for r in latency_results(f"{name}: {title}", samples, baseline, base,
                                             f"{members} members, {referrals} referrals loaded"):
                        ctx.results.add(r)
                    ctx.stack.check_alive()
    finally:
        await conn.close()


async def _check_against_group_by(ctx: Context, name: str, year: int) -> None:
    """The correctness check: every national and per-province value read from the summaries equals the
    request-time GROUP BY's (percentiles within the buckets' stated 1%)."""
    scope_period = parse_period(str(year))
    fields = tuple(f.value for f in SpmField)
    engine = create_async_engine(sqlalchemy_url(ctx.stack.dsn("reporting")))
    try:
        sessions = async_sessionmaker(engine, expire_on_commit=False)
        compared = differing = 0
        t0 = time.perf_counter()
        for prefix, length in (("", 0), ("", 2)):
            scope = Scope(prefix, length, scope_period, fields)
            async with sessions() as session, session.begin():
                found = await reads.raw_values(session=session, scope=scope)
            async with sessions() as session, session.begin():
                expected = await repository.raw_values(session=session, scope=scope)
            for region in set(found) | set(expected):
                for key in set(found.get(region, {})) | set(expected.get(region, {})):
                    got, want = found.get(region, {}).get(key) or 0, expected.get(region, {}).get(key) or 0
                    compared += 1
                    if "hours" in key:
                        differing += not within_stated_error(got, want)
                    else:
                        differing += got != want
        group_by_ms = (time.perf_counter() - t0) * 1000
    finally:
        await engine.dispose()
    ctx.results.add(Result(f"{name}: correctness", "values differing from the GROUP BY", differing, compared,
                           "values", "lower", "values compared (nation and every province, every indicator)",
                           notes=f"the request-time GROUP BY took {group_by_ms:.0f} ms for the two scopes"))
    if differing:
        raise RuntimeError(f"{differing} of {compared} summary values differ from the GROUP BY")


async def freshness(ctx: Context, samples: int) -> None:
    """An event's effect in the indicators: a household registered (the event written to the topic) until the
    village's indicators count it, polled every 10 ms."""
    name = "5. reporting freshness"
    village, year = ctx.village, str(datetime.now(UTC).year)
    params = {"region": village, "period": year}

    async def households(client: httpx.AsyncClient) -> int:
        table = (await http_ok(client, "GET", "/api/v1/indicators", params=params, headers=ctx.admin)).json()
        return int((table["rows"] or [{}])[0].get("coverage.households") or 0)

    producer = AIOKafkaProducer(bootstrap_servers=ctx.stack.broker.bootstrap_servers, acks="all",
                                enable_idempotence=False)
    await producer.start()
    delays: list[float] = []
    polls: list[float] = []
    try:
        async with httpx.AsyncClient(base_url=ctx.stack.url("reporting"), timeout=30) as client:
            count = await households(client)
            progress(f"{name}: {samples} households registered one at a time, each until the indicators count it ...")
            for _ in range(samples):
                household_id = uuid.uuid4()
                event = hev.HOUSEHOLD_REGISTERED.new(hev.HouseholdData(
                    household_id=household_id, kk_number_masked="3171******0001", village_code=village,
                    posyandu_id=uuid.UUID(ctx.posyandu_id), status="active", needs_reassignment=False, version=1),
                    subject=str(household_id), regioncode=village)
                t0 = time.perf_counter()
                await producer.send_and_wait(HOUSEHOLD_TOPIC, event.to_bytes(), key=str(household_id).encode(),
                                             headers=event.kafka_headers())
                deadline = t0 + 30
                while True:
                    p0 = time.perf_counter()
                    seen = await households(client)
                    polls.append((time.perf_counter() - p0) * 1000)
                    if seen > count:
                        break
                    if time.perf_counter() > deadline:
                        raise TimeoutError("a registered household did not reach the indicators within 30 s")
                    await asyncio.sleep(0.01)
                delays.append((time.perf_counter() - t0) * 1000)
                count = seen
    finally:
        await producer.stop()
    for r in latency_results(f"{name}: household registered to counted in the indicators", delays, polls,
                             "one indicators GET of the village (the polling step)",
                             "target: p99 <= 1000 ms, from the event written to the topic"):
        ctx.results.add(r)
