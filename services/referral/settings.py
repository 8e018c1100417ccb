"""The referral service's settings: the shared ones, its port, the household API, the SLA sweep, webhooks, the clock."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from shared.clock import Clock, system_clock
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
    #: Webhooks: the delay before each retry of a failed delivery (the Standard Webhooks example, 27.6 h in all);
    #: after the last the message is given up. Each delay is stretched by up to `webhook_retry_jitter` (a fraction).
    webhook_retry_schedule_seconds: tuple[float, ...] = (5, 300, 1800, 7200, 18000, 36000, 36000)
    webhook_retry_jitter: float = Field(default=0.2, ge=0, le=1)
    #: The failure budget: a subscription is disabled when a message is given up, or after this many failed
    #: attempts in a row (of any messages) without a success.
    webhook_max_consecutive_failures: int = Field(default=100, ge=1)
    #: How long the previous secret still signs after a rotation (deliveries carry both signatures).
    webhook_secret_overlap_seconds: float = Field(default=86_400, ge=0)
    webhook_poll_interval_seconds: float = Field(default=1.0, gt=0)
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    webhook_batch_size: int = Field(default=50, ge=1, le=1000)
    #: Hosts an operator allows although they resolve to private addresses (an agency's own network), production only.
    webhook_allowed_hosts: frozenset[str] = frozenset()
    #: When a household moves: `follow` (its open referrals go to the new route's agency) or `stay` (keep theirs).
    referral_move_policy: MovePolicy = MovePolicy.FOLLOW
    #: The time source of deadlines and the sweep; tests inject one that they move forward.
    clock: Clock = Field(default=system_clock, exclude=True)
