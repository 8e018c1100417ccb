"""The reporting service's event handlers: one module per topic family, one consumer group over every topic."""

from __future__ import annotations

from services.reporting.consumers import household, programmes, referrals, registry
from services.reporting.summaries import tracking
from shared.consumer import Batched, Handler

#: The consumer group of the service (its inbox rows and committed offsets).
GROUP = "reporting"


def all_handlers() -> dict[str, Handler | Batched]:
    """Every handler; those of household and referral events keep the summaries in the same transaction."""
    referral_handlers = referrals.handlers()
    finders = {**tracking.HOUSEHOLD_FINDERS, **{name: tracking.referral_finder for name in referral_handlers}}
    return tracking.tracked({**registry.handlers(), **household.handlers(), **referral_handlers,
                             **programmes.handlers()}, finders)
