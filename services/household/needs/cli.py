"""`python -m services.household sweep-needs`: today's need sweep now, as the background job runs it (for a cron
job, or to catch up from a chosen day)."""

from __future__ import annotations

import argparse
import asyncio
import json
from datetime import date

from services.household.needs.sweep import SweepResult, run_daily_sweep
from services.household.settings import HouseholdSettings
from shared.clock import today_by


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--since", type=date.fromisoformat, metavar="YYYY-MM-DD",
                        help="sweep every day from this one to today, even if today's sweep ran already")


async def sweep(settings: HouseholdSettings, since: date | None) -> SweepResult | None:
    from shared.db import create_engine, create_sessionmaker

    engine = create_engine(settings)
    try:
        return await run_daily_sweep(create_sessionmaker(engine), clock=settings.clock,
                                     batch_size=settings.need_sweep_batch_size, since=since)
    finally:
        await engine.dispose()


def run(args: argparse.Namespace, settings: HouseholdSettings) -> None:
    if args.since is not None and args.since > today_by(settings.clock):
        raise SystemExit(f"--since {args.since.isoformat()} is after today.")
    result = asyncio.run(sweep(settings, args.since))
    if result is None:
        print("Nothing to do: today's sweep has run, or another replica is running it now.")
        return
    print(json.dumps({"swept_on": result.swept_on.isoformat(), "since": result.since.isoformat(),
                      "households": len(result.households), "detected": result.detected,
                      "resolved": result.resolved}, indent=2))


COMMAND = ("re-evaluate the age- and time-dependent need rules for today (once a day)", add_arguments, run)
