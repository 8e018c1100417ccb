"""The measured inputs of deploy/README.md's "Sizing" and "Capacity plan": per service worker, its idle and loaded
memory and the CPU time one request costs; per table, the bytes a row takes; per household, the events it makes.

`python -m bench.capacity` starts a private bench stack (bench/stack.py: the four services as `serve` processes, one
uvicorn worker each, an embedded PostgreSQL and broker), loads the registry demo, then:
- reads each service's RSS (`/proc/<pid>/status` VmRSS) after start and a quiet minute: the idle figure;
- drives each service's typical request (household registration, household read, referral create, indicators),
  reading the process's CPU time (`/proc/<pid>/stat` utime + stime) before and after: CPU seconds per request;
- reads VmHWM (peak RSS since the counter was reset before the load): the loaded figure;
- fills the reporting projections with the bench generator (bench/benchmarks.py load_projections) and waits for
  every outbox to drain and every consumer to catch up, VACUUM ANALYZEs, then per table of every database prints
  the rows, `pg_total_relation_size` (heap, indexes, TOAST) per row and the mean `pg_column_size` of a row;
- counts the outbox rows per event type and their mean payload bytes, per registered household.

It writes bench/capacity.json and prints it; CAPACITY_HOUSEHOLDS (default 600) sets the registrations.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench import benchmarks as b
from bench.__main__ import machine_info, prepare
from bench.gen import households
from bench.measure import Results, proc_status_kb, reset_peak_rss
from bench.stack import ROOT, BenchStack, progress, start, stop, wait_quiet

OUT = ROOT / "bench" / "capacity.json"
CONCURRENCY = 16


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (`/proc/<pid>/stat` fields 14 and 15, in clock ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measured(stack: BenchStack, service: str, count: int,
                   one: Callable[[int], Awaitable[None]]) -> dict[str, Any]:
    """Run `one(i)` for i < count from CONCURRENCY clients; the service's CPU per request and the wall rate."""
    queue = list(range(count))

    async def worker() -> None:
        while queue:
            await one(queue.pop())

    pid = stack.pid(service)
    cpu0, t0 = cpu_seconds(pid), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    cpu, wall = cpu_seconds(pid) - cpu0, time.perf_counter() - t0
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


async def drained(stack: BenchStack) -> None:
    """Every outbox published and every consumer caught up (nothing changes in the projections any more)."""
    for service in ("registry", "household", "referral", "reporting"):
        conn = await stack.connect(service)
        try:
            await wait_quiet(conn, "SELECT count(*) FROM outbox WHERE published_at IS NULL", within=600)
            await wait_quiet(conn, "SELECT count(*) FROM inbox", within=600)
        finally:
            await conn.close()


async def run(stack: BenchStack, count: int) -> dict[str, Any]:
    ctx = await prepare(stack, Results())
    services = ("registry", "household", "referral", "reporting")
    progress("a quiet minute, then the idle RSS of each worker ...")
    await asyncio.sleep(60)
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
            "cpu_per_request": load,
            "events_per_service": {s: await events_made(stack, s) for s in ("registry", "household", "referral")},
            "tables": {s: await table_sizes(stack, s) for s in services}}


def main() -> int:
    count = int(os.environ.get("CAPACITY_HOUSEHOLDS", "600"))
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
