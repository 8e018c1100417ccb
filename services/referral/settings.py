"""The referral service's settings: the shared ones, its port, the household API, the SLA sweep and the clock."""

from __future__ import annotations

from pydantic import Field

from services.referral.clock import Clock, system_clock
from shared.settings import ServiceSettings


class ReferralSettings(ServiceSettings):
    port: int | None = 8003
    #: Where the assigned agency's detail read fetches the member's full NIK (the caller's token is forwarded).
    household_api_url: str = "http://127.0.0.1:8002"
    household_api_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    #: How often the background job looks for overdue and escalated referrals.
    sla_sweep_interval_seconds: float = Field(default=60.0, gt=0)
    #: Categories whose automatic referrals wait as `draft` for the kader to confirm (others start `requested`).
    draft_categories: frozenset[str] = frozenset()
    #: The time source of deadlines and the sweep; tests inject one that they move forward.
    clock: Clock = Field(default=system_clock, exclude=True)
