"""The referral service's settings: the shared ones, its port, the household API, the SLA sweep and the clock."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from services.referral.clock import Clock, system_clock
from shared.settings import ServiceSettings


class MovePolicy(StrEnum):
    """What a household's move does to its open referrals' agency (the posyandu and village always follow)."""

    #: To the agency of the new route when it differs (or unrouted when there is none).
    FOLLOW = "follow"
    #: Keep the agency, with a history entry saying so.
    STAY = "stay"


class ReferralSettings(ServiceSettings):
    port: int | None = 8003
    #: Where the assigned agency's detail read fetches the member's full NIK (the caller's token is forwarded).
    household_api_url: str = "http://127.0.0.1:8002"
    household_api_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    #: How often the background job looks for overdue and escalated referrals.
    sla_sweep_interval_seconds: float = Field(default=60.0, gt=0)
    #: Categories whose automatic referrals wait as `draft` for the kader to confirm (others start `requested`).
    draft_categories: frozenset[str] = frozenset()
    #: When a household moves: `follow` (its open referrals go to the new route's agency) or `stay` (keep theirs).
    referral_move_policy: MovePolicy = MovePolicy.FOLLOW
    #: The time source of deadlines and the sweep; tests inject one that they move forward.
    clock: Clock = Field(default=system_clock, exclude=True)
