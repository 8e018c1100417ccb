"""The reporting service's settings: the shared ones, its port, and the small-cell suppression threshold."""

from __future__ import annotations

from pydantic import Field

from shared.clock import Clock, system_clock
from shared.settings import ServiceSettings


class ReportingSettings(ServiceSettings):
    port: int | None = 8004
    #: Counts below this are withheld from everyone but an admin (and rates and percentiles built on them).
    suppression_threshold: int = Field(default=5, ge=1, le=1000)
    # The time source (the SPM matrix's default year); tests inject their own.
    clock: Clock = Field(default=system_clock, exclude=True)
    #: Seconds between two refreshes of the dashboard's figures (it polls the indicators API); 0: never.
    dashboard_refresh_seconds: int = Field(default=60, ge=0, le=3600)
