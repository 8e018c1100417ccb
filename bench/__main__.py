"""`make bench` (python -m bench): start a private stack, run every benchmark, write results, stop everything.

BENCH_SCALE=default (about 10-15 minutes on 2 cores), BENCH_SCALE=full (the issue's sizes: 1,000,000 imported
members, 1,000,000 members and 200,000 referrals in the reporting projections, and at least 1,000 samples behind
every latency figure; far longer) or BENCH_SCALE=smoke (a few minutes: checks the harness, measures nothing worth
keeping). BENCH_ONLY=3,4 runs only those sections (registration runs too whenever 3 or 4 does: it makes their
households). Every section records the load average and the CPU-seconds per operation of each process of the
stack and of the bench (bench/measure.py CpuMeter), and a section run on a busy machine says so, loudly.
"""

from __future__ import annotations

import asyncio
import os
import platform
import subprocess
import sys
import time
from collections.abc import Awaitable
from datetime import UTC, date, datetime
from typing import Any, TypeVar

import httpx

from bench import benchmarks as b
from bench import report
from bench.gen import Identifiers
from bench.measure import Result, Results, load_average
from bench.stack import ROOT, BenchStack, progress, start, stop, wait_for, wait_quiet
from shared.auth import Role, mint_token
from shared.settings import DEV_JWT_SECRET

T = TypeVar("T")

SIZES: dict[str, dict[str, int]] = {
    "smoke": {"register_households": 80, "concurrency": 8, "referrals": 40, "needs": 40, "roundtrips": 40,
              "import_members": 500, "events": 300, "report_members": 2_000, "report_referrals": 400,
              "query_repeats": 2, "freshness_samples": 5},
    "default": {"register_households": 300, "concurrency": 16, "referrals": 200, "needs": 100, "roundtrips": 200,
                "import_members": 10_000, "events": 3_000, "report_members": 100_000, "report_referrals": 20_000,
                "query_repeats": 20, "freshness_samples": 50},
    # Every latency figure from at least 1,000 samples (registration: one per household; sections 3 and 4 each
    # take 1,000 of the registered households, and their baselines as many round trips).
    "full": {"register_households": 2_000, "concurrency": 16, "referrals": 1_000, "needs": 1_000,
             "roundtrips": 1_000, "import_members": 1_000_000, "events": 20_000, "report_members": 1_000_000,
             "report_referrals": 200_000, "query_repeats": 100, "freshness_samples": 1000},
}
#: Sections BENCH_ONLY may name.
SECTIONS = report.ALL_SECTIONS


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
            "load_average_at_start": load_average()}


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
    # Settle: the demo's registry events (every region, agency and posyandu) may still be in the consumers when the
    # first posyandu is known; a section timed behind that backlog would time the backlog.
    progress("waiting until the services have consumed the registry's events ...")
    for service in ("household", "referral", "reporting"):
        conn = await stack.connect(service)
        try:
            await wait_quiet(conn, "SELECT count(*) FROM inbox", settle=3.0, within=600,
                             what=f"{service} consuming the registry's events")
        finally:
            await conn.close()
    # Then vacuum and analyze every database: the demo filled tens of thousands of region rows in each, and
    # autovacuum would otherwise take them on under the first timings. (Neither step explains why registration
    # timed in the stack's first minutes is slower than a minute later: bench/analysis.md, 2026-12-03.)
    progress("vacuuming and analyzing the databases the demo filled ...")
    for service in ("registry", "household", "referral", "reporting"):
        conn = await stack.connect(service)
        try:
            await conn.execute("VACUUM ANALYZE")
        finally:
            await conn.close()
    kader = mint_token(DEV_JWT_SECRET, Role.KADER, sub="bench-kader", posyandu_ids=[posyandu_id])
    return b.Context(stack=stack, ids=Identifiers(village[:6], date.today()), village=village,
                     posyandu_id=posyandu_id, kader={"Authorization": f"Bearer {kader}"},
                     admin={"Authorization": f"Bearer {admin_token}"}, results=results)


async def run(stack: BenchStack, sizes: dict[str, int], results: Results, only: set[str]) -> None:
    ctx = await prepare(stack, results)

    async def whole(name: str, operations: int, section: Awaitable[T]) -> T:
        """A section's load and CPU per operation, measured around all of it (the owner may add finer phases)."""
        meter = stack.meter("whole section")
        try:
            return await section
        finally:
            results.record_load(name, meter.stop(operations))

    n3, n4 = sizes["referrals"], sizes["needs"]
    created: list[str] = []
    if only & {"1", "3", "4"}:
        created = await whole("1. household registration", sizes["register_households"],
                              b.registration(ctx, sizes["register_households"], sizes["concurrency"]))
        stack.check_alive()
    if only & {"3", "4"} and len(created) < n3 + n4:
        raise RuntimeError("register more households than referrals + needs")
    if "3" in only:
        await b.referral_end_to_end(ctx, created[:n3], sizes["roundtrips"])
    if "4" in only:
        await b.need_to_referral(ctx, created[n3:n3 + n4])
    stack.check_alive()
    if "2" in only:
        await whole("2. bulk import", sizes["import_members"], b.bulk_import(ctx, sizes["import_members"]))
        stack.check_alive()
    if "5" in only:
        await whole("5. reporting projections", sizes["events"], b.consumed_event_rate(ctx, sizes["events"]))
        # Three sizes (1/10, 3/10 and all of the run's members and referrals), each loaded on top of the one
        # before through the rebuild path (projections, then rebuild-summaries).
        loaded_m = loaded_r = 0
        for label, tenths in (("1/10 scale", 1), ("3/10 scale", 3), ("full scale of this run", 10)):
            members, referrals = sizes["report_members"] * tenths // 10, sizes["report_referrals"] * tenths // 10
            await b.load_projections(ctx, members - loaded_m, referrals - loaded_r, seed=4 + tenths, label=label)
            loaded_m, loaded_r = members, referrals
            await whole(f"5. reporting queries ({label})", sizes["query_repeats"],
                        b.reporting_queries(ctx, label, sizes["query_repeats"], members, referrals))
        await whole("5. freshness", sizes["freshness_samples"], b.freshness(ctx, sizes["freshness_samples"]))
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
    only = {part.strip() for part in os.environ.get("BENCH_ONLY", ",".join(SECTIONS)).split(",") if part.strip()}
    if not only or only - set(SECTIONS):
        print(f"BENCH_ONLY names sections of {', '.join(SECTIONS)}", file=sys.stderr)
        return 2
    results = Results(info=machine_info(scale, sizes))
    results.info["sections"] = sorted(only)
    started = time.perf_counter()
    stack = start()
    ok = False
    try:
        asyncio.run(asyncio.wait_for(run(stack, sizes, results, only), timeout=float(os.environ.get(
            "BENCH_TIMEOUT_SECONDS", 3 * 3600 if scale == "full" else 1800))))
        ok = True
    finally:
        stop(stack, keep=not ok)
        results.info["duration_seconds"] = round(time.perf_counter() - started, 1)
        results.info["load_average_at_end"] = load_average()
        results.info["complete"] = ok
        if results.items:
            report.write(results)
            progress("wrote bench/results.json and bench/RESULTS.md" + ("" if ok else " (partial)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
