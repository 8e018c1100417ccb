"""Command line of the reporting service: serve, migrate, asyncapi, rebuild, rebuild-summaries, dead-letters,
roll-answers."""

import argparse
import asyncio
from pathlib import Path
from typing import Any

from services.reporting.app import asyncapi, spec
from services.reporting.rebuild.service import rebuild
from services.reporting.settings import ReportingSettings
from services.reporting.summaries import rebuild as summaries
from services.reporting.summaries import roll_cli
from services.reporting.tables import PLATFORM_TABLES
from shared import dead_letters_cli
from shared.cli import run_cli


def _rebuild(args: argparse.Namespace, settings: Any) -> None:
    applied = asyncio.run(rebuild(settings))
    print(f"projections rebuilt from {applied} events")


def _rebuild_summaries(args: argparse.Namespace, settings: Any) -> None:
    counted = asyncio.run(summaries.rebuild(settings))
    print(f"summaries rebuilt from the projections of {counted} aggregates")


if __name__ == "__main__":
    run_cli(service="reporting", service_dir=Path(__file__).parent, settings_factory=ReportingSettings,
            asyncapi=asyncapi, platform_tables=PLATFORM_TABLES,
            extra={"rebuild": ("drop the projections and replay every topic from the beginning",
                               lambda parser: None, _rebuild),
                   "rebuild-summaries": ("rebuild the summary tables from the projection tables (no topics read)",
                                         lambda parser: None, _rebuild_summaries),
                   "dead-letters": dead_letters_cli.command(lambda settings: spec().group_handlers),
                   "roll-answers": roll_cli.COMMAND})
