"""The history of a referral: one transition row per action, naming who acted (and for which agency)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.referral.tables import Referral, ReferralTransition
from shared.auth import Principal, Role

#: The actor of what the service does by itself (automatic referrals, routing, need resolution, the SLA sweep).
SYSTEM = Principal(sub="system", role=Role.SERVICE)


def record_transition(session: AsyncSession, referral: Referral, action: str, *, actor: Principal, at: datetime,
                      from_status: str | None = None, from_agency_id: uuid.UUID | None = None,
                      reason: str | None = None, outcome: str | None = None) -> None:
    # Of an escalated referral two agencies act: the entry names the one the actor acts for.
    session.add(ReferralTransition(referral_id=referral.id, action=action, from_status=from_status,
                                   to_status=referral.status, from_agency_id=from_agency_id,
                                   to_agency_id=referral.agency_id, actor=actor.sub, actor_role=actor.role.value,
                                   actor_agency_id=actor.agency_id if actor.role is Role.OPD else None,
                                   reason=reason, outcome=outcome, at=at))


def record_escalation(session: AsyncSession, referral: Referral, now: datetime) -> None:
    """The history entry of the sweep's escalation, so both agencies read when and to whom it was handed over."""
    target = referral.escalated_to_agency_id
    reason = (f"open past its escalation time; escalated to the field's province agency {target}" if target
              else "open past its escalation time; the field has no province agency to escalate to")
    record_transition(session, referral, "escalate", actor=SYSTEM, at=now, from_status=referral.status, reason=reason)
