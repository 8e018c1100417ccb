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
    #: The daily roll of the answer rows (summaries/answers.py): on, how often it looks at the clock, and how many
    #: closed months keep a month-end snapshot (older month ends read the histogram).
    answer_roll_enabled: bool = True
    answer_roll_interval_seconds: float = Field(default=600.0, gt=0)
    answer_snapshot_months: int = Field(default=24, ge=0, le=120)
