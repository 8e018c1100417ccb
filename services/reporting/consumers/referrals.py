"""Handlers for the six posyandu.referral.<field>.v1 topics: each referral's latest state and its times."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.reporting.consumers import codes
from services.reporting.tables import ReferralRow
from shared.events import referral as ev
from shared.events.envelope import CloudEvent
from shared.events.topics import REFERRAL_TOPICS
from shared.projection import Projection, handles
from shared.versioned import upsert_newer

referrals = ReferralRow.__table__  # type: ignore[attr-defined]


class ReferralEvents(Projection):
    topics = tuple(REFERRAL_TOPICS.values())

    @handles(*ev.STATE_EVENTS)
    async def on_referral(self, session: AsyncSession, event: CloudEvent, data: ev.ReferralData) -> None:
        """Upserts the referral's state from any of its events; the highest version wins.

        The events carry no completion time: the time of the event that reports a closed status stands for it, and
        it is kept when a later version (still closed) arrives.
        """
        closed = data.status in ev.ReferralStatus.CLOSED
        kept_close = sa.case((sa.literal(closed), sa.func.coalesce(referrals.c.closed_at, event.time)), else_=None)
        await upsert_newer(session, referrals, {
            "id": data.referral_id, "village_code": codes.village(data.village_code), "posyandu_id": data.posyandu_id,
            "spm_field": data.spm_field.value, "category": data.category, "urgency": data.urgency,
            "status": data.status, "agency_id": data.agency_id, "version": data.version,
            "created_at": data.created_at or event.time, "respond_by": data.respond_by,
            "complete_by": data.complete_by, "responded_at": data.responded_at, "overdue_at": data.overdue_at,
            "escalated_at": data.escalated_at, "closed_at": event.time if closed else None},
            update={"closed_at": kept_close})
