"""Default deadlines (DOMAIN.md §6, a policy): response and completion per urgency, and the escalation delay.

Admins set their own per agency, category, region and urgency, in hours, days or working days (the
`sla_overrides` table, through /api/v1/sla/overrides), and the escalation delay per urgency
(`sla_escalation_delays`); these are the values when nothing is set.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import NamedTuple

from shared.categories import Urgency


class Unit(StrEnum):
    """How a duration counts: calendar hours or days, or working days (no weekend, no holiday)."""

    HOURS = "hours"
    DAYS = "days"
    WORKING_DAYS = "working_days"


class Sla(NamedTuple):
    respond_within: timedelta
    complete_within: timedelta
    unit: Unit = Unit.DAYS


DEFAULT_SLA: Mapping[Urgency, Sla] = MappingProxyType({
    Urgency.EMERGENCY: Sla(timedelta(days=1), timedelta(days=3)),
    Urgency.HIGH: Sla(timedelta(days=3), timedelta(days=14)),
    Urgency.NORMAL: Sla(timedelta(days=7), timedelta(days=30)),
    Urgency.LOW: Sla(timedelta(days=14), timedelta(days=90)),
})

#: How long after the completion deadline a still-open referral escalates to the field's province agency.
ESCALATION_DELAY: Mapping[Urgency, timedelta] = MappingProxyType({
    Urgency.EMERGENCY: timedelta(days=1),
    Urgency.HIGH: timedelta(days=7),
    Urgency.NORMAL: timedelta(days=7),
    Urgency.LOW: timedelta(days=7),
})
