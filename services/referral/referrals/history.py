"""The history of a referral: one transition row per action, naming who acted (and for which agency)."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.referral.tables import Referral, ReferralTransition, metadata
from shared.auth import Principal, Role

#: The actor of what the service does by itself (automatic referrals, routing, need resolution, the SLA sweep).
SYSTEM = Principal(sub="system", role=Role.SERVICE)


def record_transition(session: AsyncSession, referral: Referral, action: str, *, actor: Principal, at: datetime,
                      from_status: str | None = None, from_agency_id: uuid.UUID | None = None,
                      reason: str | None = None, outcome: str | None = None) -> None:
    # Of an escalated referral two agencies act: the entry names the one the actor acts for.
    session.add(_transition(referral, action, actor=actor, at=at, from_status=from_status,
                            from_agency_id=from_agency_id, reason=reason, outcome=outcome))


def _transition(referral: Referral, action: str, *, actor: Principal, at: datetime, from_status: str | None = None,
                from_agency_id: uuid.UUID | None = None, reason: str | None = None,
                outcome: str | None = None) -> ReferralTransition:
    return ReferralTransition(referral_id=referral.id, action=action, from_status=from_status,
                              to_status=referral.status, from_agency_id=from_agency_id,
                              to_agency_id=referral.agency_id, actor=actor.sub, actor_role=actor.role.value,
                              actor_agency_id=actor.agency_id if actor.role is Role.OPD else None,
                              reason=reason, outcome=outcome, at=at)


async def insert_created(session: AsyncSession, referral: Referral, *, actor: Principal, at: datetime,
                         reason: str | None) -> bool:
    """Write a new referral and its `create` history entry in one statement. A referral of a need that has one
    already is left out (the unique index on need_id decides): False, and nothing is written."""
    referrals = metadata.tables[Referral.__tablename__]
    transitions = metadata.tables[ReferralTransition.__tablename__]
    values = {c.name: getattr(referral, c.name) for c in referrals.columns}
    created = insert(referrals).values(values)
    if referral.need_id is not None:
        created = created.on_conflict_do_nothing(index_elements=["need_id"],
                                                 index_where=referrals.c.need_id.is_not(None))
    inserted = created.returning(referrals.c.id).cte("created")
    entry = _transition(referral, "create", actor=actor, at=at, reason=reason)
    columns = [c.name for c in transitions.columns if c.name != "id"]
    history = (sa.insert(transitions)
               .from_select(columns, sa.select(inserted.c.id, *(sa.literal(getattr(entry, name), c.type)
                                                                  for name in columns[1:]
                                                                  for c in [transitions.c[name]])))
               .add_cte(inserted).returning(transitions.c.referral_id))
    return (await session.execute(history)).first() is not None


def record_escalation(session: AsyncSession, referral: Referral, now: datetime) -> None:
    """The history entry of the sweep's escalation, so both agencies read when and to whom it was handed over."""
    target = referral.escalated_to_agency_id
    reason = (f"open past its escalation time; escalated to the field's province agency {target}" if target
              else "open past its escalation time; the field has no province agency to escalate to")
    record_transition(session, referral, "escalate", actor=SYSTEM, at=now, from_status=referral.status, reason=reason)
