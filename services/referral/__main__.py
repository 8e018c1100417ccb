"""Command line of the referral service: serve, migrate, asyncapi, dead-letters."""

from pathlib import Path

from services.referral.app import asyncapi, spec
from services.referral.settings import ReferralSettings
from shared import dead_letters_cli
from shared.cli import run_cli

if __name__ == "__main__":
    run_cli(service="referral", service_dir=Path(__file__).parent, settings_factory=ReferralSettings,
            asyncapi=asyncapi,
            extra={"dead-letters": dead_letters_cli.command(lambda settings: spec(settings).group_handlers)})
