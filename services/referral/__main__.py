"""Command line of the referral service: serve, migrate, asyncapi."""

from pathlib import Path

from services.referral.app import asyncapi
from services.referral.settings import ReferralSettings
from shared.cli import run_cli

if __name__ == "__main__":
    run_cli(service="referral", service_dir=Path(__file__).parent, settings_factory=ReferralSettings,
            asyncapi=asyncapi)
