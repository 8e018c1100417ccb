"""Alembic environment of the referral service."""

import services.referral.tables as tables
import services.referral.webhooks.tables  # noqa: F401 (its tables join the same metadata)
from shared.migrations_env import run

run(tables.metadata)
