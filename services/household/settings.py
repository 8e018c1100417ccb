"""The household service's settings: the shared ones, with its own port, the bulk import's bounds and the clock."""

from pydantic import Field

from services.household.clock import Clock, system_clock
from shared.settings import ServiceSettings


class HouseholdSettings(ServiceSettings):
    port: int | None = 8002
    # The bulk import streams its body (one KK at a time in memory): its own limit, counted as it streams (413).
    household_import_max_bytes: int = Field(default=50 * 1024 * 1024, ge=1_024)
    # Imports running at once in one process (each holds a database connection and parses on the event loop); one
    # more is refused with a 503 and Retry-After rather than queued.
    household_import_max_concurrent: int = Field(default=2, ge=1)
    # The time source of everything that reads "today" (immunisation status, the schedule's version in force).
    clock: Clock = Field(default=system_clock, exclude=True)
