"""The measured inputs of deploy/README.md's "Sizing" and "Capacity plan": per service worker, its idle and loaded
memory and the CPU time one request costs; per table, the bytes a row takes; per household, the events it makes.

`python -m bench.capacity` starts a private bench stack (bench/stack.py: the four services as `serve` processes, one
uvicorn worker each, an embedded PostgreSQL and broker), loads the registry demo, then:
- reads each service's RSS (`/proc/<pid>/status` VmRSS) after start and a quiet minute: the idle figure;
- drives each service's typical request (household registration, household read, referral create, indicators),
  reading the process's CPU time (`/proc/<pid>/stat` utime + stime) before and after: CPU seconds per request;
- reads VmHWM (peak RSS since the counter was reset before the load): the loaded figure;
- loads CAPACITY_DEMO_HOUSEHOLDS (default 100) households of the demo generator (services/household/demo: profiles
  of the six fields, child measurements, the needs and referrals they raise) and counts the events they made, per
  household: the events of a household's posyandu day;
- adds 20,000 households of the bench generator (bench/gen.py, the rows the service writes, as raw inserts) to the
  household database and 100,000 members and 20,000 referrals to the reporting projections
  (bench/benchmarks.py load_projections), so that the big tables' per-row sizes do not carry an empty index's
  pages; waits for every outbox to drain and every consumer to catch up, VACUUM ANALYZEs, then per table of every
  database prints the rows, `pg_total_relation_size` (heap, indexes, TOAST) per row and the mean `pg_column_size`
  of a row;
- counts the outbox rows per event type and their mean payload bytes.

It writes bench/capacity.json and prints it; CAPACITY_HOUSEHOLDS (default 300) sets the API registrations.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx

from bench import benchmarks as b
from bench.__main__ import machine_info, prepare
from bench.gen import Identifiers, households
from bench.measure import Results, proc_status_kb, reset_peak_rss
from bench.stack import ROOT, BenchStack, progress, start, stop, wait_quiet
from services.household.demo import loader as demo

OUT = ROOT / "bench" / "capacity.json"
CONCURRENCY = 16


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (`/proc/<pid>/stat` fields 14 and 15, in clock ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


#: CPU seconds per second each service spends idle (its consumers' fetch loop, the relay's poll), measured over a
#: quiet minute and subtracted from every load figure.
IDLE_CPU: dict[str, float] = {}


async def measured(stack: BenchStack, service: str, count: int,
                   one: Callable[[int], Awaitable[None]]) -> dict[str, Any]:
    """Run `one(i)` for i < count from CONCURRENCY clients; the service's CPU per request (less its idle CPU over
    the same time) and the wall rate."""
    queue = list(range(count))

    async def worker() -> None:
        while queue:
            await one(queue.pop())

    pid = stack.pid(service)
    cpu0, t0 = cpu_seconds(pid), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    wall = time.perf_counter() - t0
    cpu = cpu_seconds(pid) - cpu0 - IDLE_CPU[service] * wall
    return {"requests": count, "service_cpu_seconds": round(cpu, 2), "wall_seconds": round(wall, 2),
            "cpu_ms_per_request": round(1000 * cpu / count, 2), "requests_per_second_wall": round(count / wall, 2)}


async def table_sizes(stack: BenchStack, service: str) -> list[dict[str, Any]]:
    conn = await stack.connect(service)
    try:
        await conn.execute("VACUUM ANALYZE")
        tables = [r["relname"] for r in await conn.fetch(
            "SELECT relname FROM pg_stat_user_tables WHERE schemaname = 'public' AND relname <> 'alembic_version' "
            "ORDER BY relname")]
        sizes = []
        for table in tables:
            row = await conn.fetchrow(
                f'SELECT count(*) AS rows, pg_total_relation_size($1::regclass) AS total_bytes, '
                f'pg_relation_size($1::regclass) AS heap_bytes, avg(pg_column_size(t.*))::float AS row_bytes '
                f'FROM "{table}" t', table)
            if row["rows"]:
                sizes.append({"table": table, "rows": row["rows"], "total_bytes": row["total_bytes"],
                              "total_bytes_per_row": round(row["total_bytes"] / row["rows"]),
                              "heap_bytes_per_row": round(row["heap_bytes"] / row["rows"]),
                              "row_bytes": round(row["row_bytes"])})
        return sizes
    finally:
        await conn.close()


async def events_made(stack: BenchStack, service: str) -> list[dict[str, Any]]:
    conn = await stack.connect(service)
    try:
        return [dict(r) for r in await conn.fetch(
            "SELECT event_type, topic, count(*) AS events, round(avg(length(payload))) AS payload_bytes "
            "FROM outbox GROUP BY event_type, topic ORDER BY event_type")]
    finally:
        await conn.close()


async def outbox_counts(stack: BenchStack) -> dict[str, int]:
    """Outbox rows per `service event_type` so far."""
    counts: dict[str, int] = {}
    for service in ("household", "referral"):
        conn = await stack.connect(service)
        try:
            for r in await conn.fetch("SELECT event_type, count(*) AS n FROM outbox GROUP BY event_type"):
                counts[f"{service} {r['event_type']}"] = r["n"]
        finally:
            await conn.close()
    return counts


async def drained(stack: BenchStack) -> None:
    """Every outbox published and every consumer caught up (nothing changes in the projections any more)."""
    for service in ("registry", "household", "referral", "reporting"):
        conn = await stack.connect(service)
        try:
            if service != "reporting":  # reporting publishes nothing: it has no outbox
                await wait_quiet(conn, "SELECT count(*) FROM outbox WHERE published_at IS NULL", within=600)
            await wait_quiet(conn, "SELECT count(*) FROM inbox", within=600)
        finally:
            await conn.close()


async def run(stack: BenchStack, count: int) -> dict[str, Any]:
    ctx = await prepare(stack, Results())
    services = ("registry", "household", "referral", "reporting")
    progress("a quiet minute, then the idle RSS and CPU of each worker ...")
    quiet0 = {s: (cpu_seconds(stack.pid(s)), time.perf_counter()) for s in services}
    await asyncio.sleep(60)
    IDLE_CPU.update({s: (cpu_seconds(stack.pid(s)) - c) / (time.perf_counter() - t) for s, (c, t) in quiet0.items()})
    idle = {s: round(proc_status_kb(stack.pid(s), "VmRSS") / 1024, 1) for s in services}
    peak_reset = {s: reset_peak_rss(stack.pid(s)) for s in services}
    load: dict[str, Any] = {}
    created: list[str] = []

    async with httpx.AsyncClient(base_url=stack.url("household"), timeout=120) as client:
        rows = households(ctx.ids, ctx.village, ctx.posyandu_id, count, seed=11)

        async def register(i: int) -> None:
            response = await client.post("/api/v1/households", json=rows[i].body(), headers=ctx.kader)
            if response.status_code != 201:
                raise RuntimeError(f"registration: {response.status_code} {response.text[:300]}")
            created.append(response.json()["id"])

        progress(f"{count} household registrations ...")
        load["household registration (POST /api/v1/households)"] = await measured(stack, "household", count,
                                                                                   register)
        load["household registration (POST /api/v1/households)"]["members"] = sum(len(h.members) for h in rows)

        async def read(i: int) -> None:
            response = await client.get(f"/api/v1/households/{created[i % len(created)]}", headers=ctx.kader)
            response.raise_for_status()

        progress(f"{2 * count} household reads ...")
        load["household read (GET /api/v1/households/{id})"] = await measured(stack, "household", 2 * count, read)

    referred = created[: count // 2]
    await b._known_to_referral(ctx, referred)
    async with httpx.AsyncClient(base_url=stack.url("referral"), timeout=120) as client:
        async def refer(i: int) -> None:
            response = await client.post("/api/v1/referrals", headers=ctx.kader, json={
                "household_id": referred[i], "spm_field": b.FIELD, "category": b.CATEGORY, "reason": "capacity"})
            response.raise_for_status()

        progress(f"{len(referred)} referrals ...")
        load["referral create (POST /api/v1/referrals)"] = await measured(stack, "referral", len(referred), refer)

    await drained(stack)
    demo_count = int(os.environ.get("CAPACITY_DEMO_HOUSEHOLDS", "100"))
    before = await outbox_counts(stack)
    progress(f"{demo_count} demo households (profiles, measurements, needs) ...")
    cpu0, demo0 = {s: cpu_seconds(stack.pid(s)) for s in services}, time.perf_counter()
    async with httpx.AsyncClient(base_url=stack.url("household"), timeout=120) as household, \
            httpx.AsyncClient(base_url=stack.url("registry"), timeout=120) as registry:
        summary = await demo.load(household, registry, admin_token=ctx.admin["Authorization"].split()[1],
                                  households=demo_count, concurrency=8)
    await drained(stack)
    # Everything a demo household costs each service: its API calls, and consuming the events they make.
    demo_wall = time.perf_counter() - demo0
    demo_cpu_ms = {s: round(1000 * (cpu_seconds(stack.pid(s)) - cpu0[s] - IDLE_CPU[s] * demo_wall) / demo_count, 2)
                   for s in services}
    after = await outbox_counts(stack)
    per_demo_household = {k: round((after[k] - before.get(k, 0)) / demo_count, 3) for k in sorted(after)
                          if after[k] > before.get(k, 0)}
    progress("20,000 bench-generator households as raw inserts ...")
    conn = await stack.connect("household")
    try:
        # Numbers of a district no demo region has (7399), so that none meets a demo household's.
        for h in households(Identifiers("739901", date.today()), ctx.village, ctx.posyandu_id, 20_000, seed=13):
            await b._raw_register(conn, h, b._raw_registration(h, date.today()))
    finally:
        await conn.close()
    progress("the bench generator's reporting rows (100,000 members, 20,000 referrals) ...")
    await b.load_projections(ctx, 100_000, 20_000, seed=12)
    year = str(datetime.now(UTC).year)
    async with httpx.AsyncClient(base_url=stack.url("reporting"), timeout=300) as client:
        async def indicators(i: int) -> None:
            params = {"period": year, "region": "31", "by": "regency"} if i % 2 else {"period": year}
            response = await client.get("/api/v1/indicators", params=params, headers=ctx.admin)
            response.raise_for_status()

        progress("40 indicator queries (national and province 31 by regency) ...")
        load["indicators (GET /api/v1/indicators, 100k members)"] = await measured(stack, "reporting", 40,
                                                                                    indicators)
    peak = {s: round(proc_status_kb(stack.pid(s), "VmHWM") / 1024, 1) for s in services}
    await drained(stack)
    progress("table sizes ...")
    return {"info": {**machine_info("capacity", {"households": count, "concurrency": CONCURRENCY}),
                     "peak_rss_reset_before_load": peak_reset, "uvicorn_workers_per_process": 1},
            "memory_mib": {s: {"idle_rss": idle[s], "peak_rss_under_load": peak[s]} for s in services},
            "idle_cpu_cores": {s: round(IDLE_CPU[s], 4) for s in services},
            "cpu_per_request": load,
            "demo_households": {"households": demo_count, "members": summary.members,
                                "measurements": summary.measurements, "profiles": summary.profiles_written,
                                "open_needs": sum(summary.needs.values()),
                                "cpu_ms_per_household": demo_cpu_ms,
                                "events_per_household_by_type": per_demo_household},
            "events_per_service": {s: await events_made(stack, s) for s in ("registry", "household", "referral")},
            "tables": {s: await table_sizes(stack, s) for s in services}}


def main() -> int:
    count = int(os.environ.get("CAPACITY_HOUSEHOLDS", "300"))
    stack = start()
    try:
        result = asyncio.run(run(stack, count))
    finally:
        stop(stack)
    OUT.write_text(json.dumps(result, indent=1, default=str) + "\n")
    print(json.dumps(result, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
