"""Command line of the household service: serve, migrate, asyncapi, import-households, sweep-needs, republish,
dead-letters."""

from pathlib import Path

from services.household import republish_cli
from services.household.app import asyncapi, spec
from services.household.imports import cli as import_cli
from services.household.needs import cli as sweep_cli
from services.household.settings import HouseholdSettings
from shared import dead_letters_cli
from shared.cli import run_cli

if __name__ == "__main__":
    run_cli(service="household", service_dir=Path(__file__).parent, settings_factory=HouseholdSettings,
            asyncapi=asyncapi, extra={"import-households": import_cli.COMMAND, "sweep-needs": sweep_cli.COMMAND,
                   "republish": republish_cli.COMMAND,
                   "dead-letters": dead_letters_cli.command(lambda settings: spec(settings).group_handlers)})
