"""The household service's settings: the shared ones, its own port, the bulk import's bounds, the need sweep."""

from pydantic import Field

from shared.clock import Clock, system_clock
from shared.settings import ServiceSettings


class HouseholdSettings(ServiceSettings):
    port: int | None = 8002
    # The bulk import streams its body (one KK at a time in memory): its own limit, counted as it streams (413).
    household_import_max_bytes: int = Field(default=50 * 1024 * 1024, ge=1_024)
    # Imports running at once in one process (each holds a database connection and parses on the event loop); one
    # more is refused with a 503 and Retry-After rather than queued.
    household_import_max_concurrent: int = Field(default=2, ge=1)
    # The daily need sweep (needs/sweep.py): re-evaluates the age- and time-dependent rules once a day (UTC).
    need_sweep_enabled: bool = True
    #: How often the background job checks whether today's sweep is still to run (one short query).
    need_sweep_interval_seconds: float = Field(default=600.0, gt=0)
    #: Households re-evaluated per transaction (each holds its households' row locks until it commits).
    need_sweep_batch_size: int = Field(default=200, ge=1, le=10_000)
    # Programme beneficiary lists (beneficiaries/): the largest file and the most rows one upload takes (413 / 422).
    household_beneficiary_list_max_bytes: int = Field(default=5 * 1024 * 1024, ge=1_024)
    household_beneficiary_list_max_rows: int = Field(default=10_000, ge=1)
    #: Households announced per transaction by a snapshot republish (services/household/republish.py).
    republish_chunk_size: int = Field(default=500, ge=1, le=10_000)
    # The time source (the need sweep's day, the immunisation status and schedule version in force, which
    # dates are in the future for sessions and visits); tests inject their own.
    clock: Clock = Field(default=system_clock, exclude=True)
