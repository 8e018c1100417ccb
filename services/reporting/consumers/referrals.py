"""Handlers for the six posyandu.referral.<field>.v1 topics: each referral's latest state and its times."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.reporting.consumers import codes
from services.reporting.tables import ReferralRow
from shared.consumer import Batched, Handler
from shared.events import referral as ev
from shared.events.catalogue import CATALOGUE
from shared.events.envelope import CloudEvent

referrals = ReferralRow.__table__  # type: ignore[attr-defined]


async def on_referral(session: AsyncSession, event: CloudEvent) -> None:
    """Upserts the referral's state from any of its events; the highest version wins.

    The events carry no completion time: the time of the event that reports a closed status stands for it, and
    it is kept when a later version (still closed) arrives.
    """
    data = ev.ReferralData.model_validate(event.data)
    closed = data.status in ev.ReferralStatus.CLOSED
    values = {"village_code": codes.village(data.village_code), "posyandu_id": data.posyandu_id,
              "spm_field": data.spm_field.value, "category": data.category, "urgency": data.urgency,
              "status": data.status, "agency_id": data.agency_id, "version": data.version,
              "created_at": data.created_at or event.time, "respond_by": data.respond_by,
              "complete_by": data.complete_by, "responded_at": data.responded_at,
              "overdue_at": data.overdue_at, "escalated_at": data.escalated_at,
              "closed_at": event.time if closed else None}
    update = {**values, "closed_at": sa.case((sa.literal(closed), sa.func.coalesce(referrals.c.closed_at,
                                                                                  event.time)), else_=None)}
    await session.execute(insert(referrals).values(id=data.referral_id, **values).on_conflict_do_update(
        index_elements=["id"], set_=update, where=referrals.c.version < data.version))


def handlers() -> dict[str, Handler | Batched]:
    return {name: on_referral for name, event_type in CATALOGUE.items()
            if event_type.publisher == "referral" and event_type.data_model is ev.ReferralData}
