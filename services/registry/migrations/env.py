"""Alembic environment of the registry service."""

import services.registry.tables as tables
from shared.migrations_env import run

run(tables.metadata)
