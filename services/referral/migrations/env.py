"""Alembic environment of the referral service."""

import services.referral.tables as tables
from shared.migrations_env import run

run(tables.metadata)
