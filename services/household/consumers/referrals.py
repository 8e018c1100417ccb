"""Handlers for the referral topics: which agency may read which household (while its referral is open).

One row per referral: the agency it is routed to and, once it escalated, the field's province agency as well (the
two act on it, so both read the household). A reassignment or re-routing moves the access to the new agency;
closing it, or its becoming unrouted, ends it. The referral's version orders the events: an older one that arrives
late changes nothing.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.household.tables import AgencyAccess, metadata
from shared.events import referral as ref
from shared.events.envelope import CloudEvent
from shared.events.topics import REFERRAL_TOPICS
from shared.projection import Projection, handles
from shared.versioned import upsert_newer


class ReferralEvents(Projection):
    topics = tuple(REFERRAL_TOPICS.values())

    @handles(*ref.STATE_EVENTS)
    async def on_referral(self, session: AsyncSession, event: CloudEvent, data: ref.ReferralData) -> None:
        table = metadata.tables[AgencyAccess.__tablename__]
        if data.agency_id is None:
            # Unrouted (or never routed): no agency reads the household through this referral.
            await session.execute(table.update().where(table.c.referral_id == data.referral_id,
                                                       table.c.version < data.version)
                                  .values(open=False, escalated_to_agency_id=None, version=data.version))
            return
        await upsert_newer(session, table, {
            "referral_id": data.referral_id, "agency_id": data.agency_id, "household_id": data.household_id,
            "spm_field": data.spm_field.value, "open": data.status not in ref.ReferralStatus.CLOSED,
            "escalated_to_agency_id": data.escalated_to_agency_id, "version": data.version}, key=("referral_id",))
