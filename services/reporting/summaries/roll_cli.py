"""`python -m services.reporting roll-answers`: today's roll of the answer rows now, as the background job runs it
(for a cron job, or right after an upgrade)."""

from __future__ import annotations

import argparse
import asyncio
import json

from services.reporting.settings import ReportingSettings
from services.reporting.summaries.answers import RollResult, run_daily_roll
from shared.db import create_engine, create_sessionmaker


async def roll(settings: ReportingSettings) -> RollResult | None:
    engine = create_engine(settings, unbounded_statements=True)  # offline: its statements grow with the data
    try:
        return await run_daily_roll(create_sessionmaker(engine), clock=settings.clock,
                                    snapshot_months=settings.answer_snapshot_months)
    finally:
        await engine.dispose()


def run(args: argparse.Namespace, settings: ReportingSettings) -> None:
    result = asyncio.run(roll(settings))
    if result is None:
        print("Nothing to do: today's answers are held, or another replica is rolling them now.")
        return
    print(json.dumps({"today": result.today.isoformat(), "derived": [d.isoformat() for d in result.derived],
                      "dropped": [d.isoformat() for d in result.dropped]}, indent=2))


COMMAND = ("derive the answer rows of today and of the month-end snapshots (once a day)", lambda parser: None, run)
