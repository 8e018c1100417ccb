"""The history of a referral: one transition row per action, naming who acted (and for which agency); and the write
of a new referral, which brings its first entry, event and webhook deliveries along."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.referral.tables import Referral, ReferralTransition, metadata
from services.referral.webhooks.service import deliveries_of_new, deliveries_of_new_parameters
from shared.auth import Principal, Role
from shared.events.envelope import CloudEvent
from shared.outbox import insert_outbox_row, outbox_parameters

#: The actor of what the service does by itself (automatic referrals, routing, need resolution, the SLA sweep).
SYSTEM = Principal(sub="system", role=Role.SERVICE)


def record_transition(session: AsyncSession, referral: Referral, action: str, *, actor: Principal, at: datetime,
                      from_status: str | None = None, from_agency_id: uuid.UUID | None = None,
                      reason: str | None = None, outcome: str | None = None) -> None:
    # Of an escalated referral two agencies act: the entry names the one the actor acts for.
    session.add(_transition(referral, action, actor=actor, at=at, from_status=from_status,
                            from_agency_id=from_agency_id, reason=reason, outcome=outcome))


def _transition_values(referral: Referral, action: str, *, actor: Principal, at: datetime,
                       from_status: str | None = None, from_agency_id: uuid.UUID | None = None,
                       reason: str | None = None, outcome: str | None = None) -> dict[str, Any]:
    return {"referral_id": referral.id, "action": action, "from_status": from_status, "to_status": referral.status,
            "from_agency_id": from_agency_id, "to_agency_id": referral.agency_id, "actor": actor.sub,
            "actor_role": actor.role.value, "actor_agency_id": actor.agency_id if actor.role is Role.OPD else None,
            "reason": reason, "outcome": outcome, "at": at}


def _transition(referral: Referral, action: str, **entry: Any) -> ReferralTransition:
    return ReferralTransition(**_transition_values(referral, action, **entry))


_referrals = metadata.tables[Referral.__tablename__]
_transitions = metadata.tables[ReferralTransition.__tablename__]
#: The history entry's columns but its id (a sequence's) and referral_id (the inserted referral's), bound as `h_*`.
_ENTRY_COLUMNS = [c.name for c in _transitions.columns if c.name not in ("id", "referral_id")]


def _insert_created(*, of_need: bool) -> sa.Select[Any]:
    """The referral (every column bound by its name) and, from what it returned, its history entry (`h_<column>`),
    its event's outbox row (`outbox_*`, shared/outbox.py) and its webhook deliveries (`d_*`, webhooks/service.py);
    a referral of a need skips a need_id that has one (`ON CONFLICT DO NOTHING`: then nothing at all is written, and
    nothing returned)."""
    created = insert(_referrals).values({c.name: sa.bindparam(c.name, type_=c.type) for c in _referrals.columns})
    if of_need:
        created = created.on_conflict_do_nothing(index_elements=["need_id"],
                                                 index_where=_referrals.c.need_id.is_not(None))
    inserted = created.returning(_referrals.c.id).cte("created")
    entry = (sa.bindparam(f"h_{name}", type_=_transitions.c[name].type) for name in _ENTRY_COLUMNS)
    history = sa.insert(_transitions).from_select(["referral_id", *_ENTRY_COLUMNS], sa.select(inserted.c.id, *entry))
    return sa.select(inserted.c.id).add_cte(history.cte("entry"), insert_outbox_row(inserted).cte("published"),
                                            deliveries_of_new(inserted).cte("delivered"))


# Built once (the values are bound per execution): a create neither rebuilds nor recompiles them.
_INSERT_CREATED = {of_need: _insert_created(of_need=of_need) for of_need in (False, True)}


async def insert_created(session: AsyncSession, referral: Referral, event: CloudEvent, *, actor: Principal,
                         at: datetime, reason: str | None) -> bool:
    """Write a new referral, its `create` history entry, its first event (`event`, in the outbox) and the webhook
    deliveries of that event, in one statement. A referral of a need that has one already is left out (the unique
    index on need_id decides): False, and nothing is written."""
    values = {c.name: getattr(referral, c.name) for c in _referrals.columns}
    entry = _transition_values(referral, "create", actor=actor, at=at, reason=reason)
    values.update({f"h_{name}": entry[name] for name in _ENTRY_COLUMNS})
    values.update(outbox_parameters(session, event))
    values.update(deliveries_of_new_parameters(event, referral))
    statement = _INSERT_CREATED[referral.need_id is not None]
    return (await session.execute(statement, values)).first() is not None


def record_escalation(session: AsyncSession, referral: Referral, now: datetime) -> None:
    """The history entry of the sweep's escalation, so both agencies read when and to whom it was handed over."""
    target = referral.escalated_to_agency_id
    reason = (f"open past its escalation time; escalated to the field's province agency {target}" if target
              else "open past its escalation time; the field has no province agency to escalate to")
    record_transition(session, referral, "escalate", actor=SYSTEM, at=now, from_status=referral.status, reason=reason)
