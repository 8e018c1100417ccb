"""Alembic environment of the household service."""

import services.household.immunization.tables
import services.household.imports.tables  # noqa: F401  (its table joins the household metadata too)
import services.household.tables as tables
from shared.migrations_env import run

run(tables.metadata)
