"""The reporting service's event handlers: one projection per topic family, one consumer group over every topic."""

from __future__ import annotations

from services.reporting.consumers.household import HouseholdEvents
from services.reporting.consumers.programmes import ProgrammeEvents
from services.reporting.consumers.referrals import ReferralEvents
from services.reporting.consumers.registry import RegistryEvents
from services.reporting.summaries import tracking
from shared.consumer import Batched, Handler
from shared.events import referral
from shared.projection import handlers_of

#: The consumer group of the service (its inbox rows and committed offsets).
GROUP = "reporting"


def all_handlers() -> dict[str, Handler | Batched]:
    """Every handler; those of household and referral events keep the summaries in the same transaction."""
    finders = {**tracking.HOUSEHOLD_FINDERS,
               **{event_type.name: tracking.referral_finder for event_type in referral.STATE_EVENTS}}
    return tracking.tracked(handlers_of(RegistryEvents(), HouseholdEvents(), ReferralEvents(), ProgrammeEvents()),
                            finders)
