"""The reporting service's event handlers: one module per topic family, one consumer group over every topic."""

from __future__ import annotations

from services.reporting.consumers import household, programmes, referrals, registry
from shared.consumer import Batched, Handler

#: The consumer group of the service (its inbox rows and committed offsets).
GROUP = "reporting"


def all_handlers() -> dict[str, Handler | Batched]:
    return {**registry.handlers(), **household.handlers(), **referrals.handlers(), **programmes.handlers()}
