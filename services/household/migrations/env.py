"""Alembic environment of the household service."""

import services.household.tables as tables
from shared.migrations_env import run

run(tables.metadata)
