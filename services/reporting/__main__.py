"""Command line of the reporting service: serve, migrate, asyncapi, rebuild, dead-letters."""

import argparse
import asyncio
from pathlib import Path
from typing import Any

from services.reporting.app import asyncapi, spec
from services.reporting.rebuild.service import rebuild
from services.reporting.settings import ReportingSettings
from shared import dead_letters_cli
from shared.cli import run_cli


def _rebuild(args: argparse.Namespace, settings: Any) -> None:
    applied = asyncio.run(rebuild(settings))
    print(f"projections rebuilt from {applied} events")


if __name__ == "__main__":
    run_cli(service="reporting", service_dir=Path(__file__).parent, settings_factory=ReportingSettings,
            asyncapi=asyncapi,
            extra={"rebuild": ("drop the projections and replay every topic from the beginning",
                               lambda parser: None, _rebuild),
                   "dead-letters": dead_letters_cli.command(lambda settings: spec().group_handlers)})
