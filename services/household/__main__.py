"""Command line of the household service: serve, migrate, asyncapi."""

from pathlib import Path

from services.household.app import asyncapi
from services.household.settings import HouseholdSettings
from shared.cli import run_cli

if __name__ == "__main__":
    run_cli(service="household", service_dir=Path(__file__).parent, settings_factory=HouseholdSettings,
            asyncapi=asyncapi)
