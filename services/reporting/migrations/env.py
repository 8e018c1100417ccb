"""Alembic environment of the reporting service."""

import services.reporting.tables as tables
from shared.migrations_env import run

run(tables.metadata, tables.PLATFORM_TABLES)
