"""Alembic environment of the household service."""

import services.household.beneficiaries.tables
import services.household.immunization.tables
import services.household.imports.tables  # noqa: F401  (their tables join the household metadata too)
import services.household.tables as tables
from shared.migrations_env import run

run(tables.metadata)
