"""Alembic environment of the household service."""

import services.household.beneficiaries.tables
import services.household.immunization.tables  # noqa: F401  (its tables join the household metadata)
import services.household.tables as tables
from shared.migrations_env import run

run(tables.metadata)
