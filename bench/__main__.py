"""`make bench` (python -m bench): start a private stack, run every benchmark, write results, stop everything.

BENCH_SCALE=default (about 10-15 minutes on 2 cores) or BENCH_SCALE=full (the issue's sizes: 100,000 imported
members, 1,000,000 members and 200,000 referrals in the reporting projections; far longer).
"""

from __future__ import annotations

import asyncio
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, date, datetime
from typing import Any

import httpx

from bench import benchmarks as b
from bench import report
from bench.gen import Identifiers
from bench.measure import Result, Results
from bench.stack import ROOT, BenchStack, progress, start, stop, wait_for
from shared.auth import Role, mint_token
from shared.settings import DEV_JWT_SECRET

SIZES: dict[str, dict[str, int]] = {
    "default": {"register_households": 300, "concurrency": 16, "referrals": 200, "needs": 100, "roundtrips": 200,
                "import_members": 10_000, "events": 3_000, "report_members": 100_000, "report_referrals": 20_000,
                "query_repeats": 20, "freshness_samples": 50},
    "full": {"register_households": 1_000, "concurrency": 16, "referrals": 200, "needs": 200, "roundtrips": 200,
             "import_members": 100_000, "events": 20_000, "report_members": 1_000_000,
             "report_referrals": 200_000, "query_repeats": 100, "freshness_samples": 1000},
}


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def machine_info(scale: str, sizes: dict[str, int]) -> dict[str, Any]:
    cpu_model = ""
    try:
        cpu_model = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                          if line.startswith("model name")), "")
        mem_kb = next(int(line.split()[1]) for line in open("/proc/meminfo") if line.startswith("MemTotal"))
    except (OSError, StopIteration):
        mem_kb = 0
    return {"timestamp": datetime.now(UTC).isoformat(timespec="seconds"), "scale": scale, "sizes": sizes,
            "git_commit": _git("rev-parse", "HEAD"), "git_dirty": bool(_git("status", "--porcelain")),
            "python": sys.version.split()[0], "platform": platform.platform(), "cpu_model": cpu_model,
            "cpu_count": os.cpu_count(), "memory_total_mib": mem_kb // 1024,
            "service_log_level": os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()]}


async def prepare(stack: BenchStack, results: Results) -> b.Context:
    from services.registry import demo as registry_demo

    admin_token = mint_token(DEV_JWT_SECRET, Role.ADMIN, sub="bench-admin")
    progress("loading the registry demo data (regions, agencies, posyandu) ...")
    async with httpx.AsyncClient(base_url=stack.url("registry"), timeout=120) as registry:
        ids = await registry_demo.load(registry, admin_token)
    code, posyandu_id = next((c, p) for c, p in sorted(ids.posyandu.items()) if c.startswith("P3171"))
    village = code[1:11]
    progress(f"waiting until the services have learnt the registry (posyandu {code}) ...")
    for service, query in (("household", "SELECT count(*) FROM known_posyandu WHERE id = $1::uuid"),
                           ("referral", "SELECT count(*) FROM known_agencies"),
                           ("reporting", "SELECT count(*) FROM posyandu WHERE id = $1::uuid")):
        conn = await stack.connect(service)
        try:
            args = () if "known_agencies" in query else (posyandu_id,)
            await wait_for(conn, query, *args, expected=1, within=180, what=f"{service} learning the registry")
        finally:
            await conn.close()
    conn = await stack.connect("reporting")
    try:
        await wait_for(conn, "SELECT count(*) FROM agencies", expected=len(ids.agencies), within=180,
                       what="reporting learning the agencies")
    finally:
        await conn.close()
    kader = mint_token(DEV_JWT_SECRET, Role.KADER, sub="bench-kader", posyandu_ids=[posyandu_id])
    return b.Context(stack=stack, ids=Identifiers(village[:6], date.today()), village=village,
                     posyandu_id=posyandu_id, kader={"Authorization": f"Bearer {kader}"},
                     admin={"Authorization": f"Bearer {admin_token}"}, results=results)


async def run(stack: BenchStack, sizes: dict[str, int], results: Results) -> None:
    ctx = await prepare(stack, results)
    created = await b.registration(ctx, sizes["register_households"], sizes["concurrency"])
    stack.check_alive()
    progress(f"raw baseline: {sizes['roundtrips']} aiokafka produce-to-consume round trips ...")
    raw = await b.raw_roundtrip(ctx, sizes["roundtrips"])
    n3, n4 = sizes["referrals"], sizes["needs"]
    if len(created) < n3 + n4:
        raise RuntimeError("register more households than referrals + needs")
    await b.referral_end_to_end(ctx, created[:n3], raw)
    await b.need_to_referral(ctx, created[n3:n3 + n4], raw[:n4])
    stack.check_alive()
    await b.bulk_import(ctx, sizes["import_members"])
    stack.check_alive()
    await b.consumed_event_rate(ctx, sizes["events"])
    # Three sizes (1/10, 3/10 and all of the run's members and referrals), each loaded on top of the one before
    # through the rebuild path (projections, then rebuild-summaries).
    loaded_m = loaded_r = 0
    for label, tenths in (("1/10 scale", 1), ("3/10 scale", 3), ("full scale of this run", 10)):
        members, referrals = sizes["report_members"] * tenths // 10, sizes["report_referrals"] * tenths // 10
        await b.load_projections(ctx, members - loaded_m, referrals - loaded_r, seed=4 + tenths)
        loaded_m, loaded_r = members, referrals
        await b.reporting_queries(ctx, label, sizes["query_repeats"], members, referrals)
    await b.freshness(ctx, sizes["freshness_samples"])
    growth(results)


def growth(results: Results) -> None:
    """6. cost growth: p50 and p99 at this run's scale against the same at a tenth of it (the smallest size)."""
    def of(label: str) -> dict[tuple[str, str], Result]:
        return {(r.benchmark.split(": ", 1)[1], r.metric): r for r in results.items
                if r.benchmark.startswith(f"5. reporting queries ({label}") and r.metric.endswith("latency")}

    small, large = of("1/10"), of("full")
    for (title, metric), big in large.items():
        if (title, metric) in small:
            results.add(Result("6. cost growth (10x data)", f"{title}: API {metric.split()[0]}", big.value,
                               small[(title, metric)].value, "ms", "lower",
                               "the same figure at one tenth of the data (ratio = growth factor; target <= 1.5)"))


def main() -> int:
    scale = os.environ.get("BENCH_SCALE", "default")
    if scale not in SIZES:
        print(f"BENCH_SCALE must be one of {sorted(SIZES)}", file=sys.stderr)
        return 2
    sizes = SIZES[scale]
    results = Results(info=machine_info(scale, sizes))
    started = time.perf_counter()
    stack = start()
    ok = False
    try:
        asyncio.run(asyncio.wait_for(run(stack, sizes, results), timeout=float(os.environ.get(
            "BENCH_TIMEOUT_SECONDS", 3 * 3600 if scale == "full" else 1800))))
        ok = True
    finally:
        stop(stack, keep=not ok)
        results.info["duration_seconds"] = round(time.perf_counter() - started, 1)
        results.info["complete"] = ok
        if results.items:
            report.write(results)
            progress("wrote bench/results.json and bench/RESULTS.md" + ("" if ok else " (partial)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
