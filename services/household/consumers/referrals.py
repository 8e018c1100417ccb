"""Handlers for the referral topics: which agency may read which household (while its referral is open).

One row per referral: the agency it is routed to and, once it escalated, the field's province agency as well (the
two act on it, so both read the household). A reassignment or re-routing moves the access to the new agency;
closing it, or its becoming unrouted, ends it. The referral's version orders the events: an older one that arrives
late changes nothing.
"""

from __future__ import annotations

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.household.tables import AgencyAccess, metadata
from shared.consumer import Handler
from shared.events import referral as ref
from shared.events.envelope import CloudEvent


async def on_referral(session: AsyncSession, event: CloudEvent) -> None:
    data = ref.ReferralData.model_validate(event.data)
    table = metadata.tables[AgencyAccess.__tablename__]
    if data.agency_id is None:
        # Unrouted (or never routed): no agency reads the household through this referral.
        await session.execute(table.update().where(table.c.referral_id == data.referral_id,
                                                   table.c.version < data.version)
                              .values(open=False, escalated_to_agency_id=None, version=data.version))
        return
    values = {"agency_id": data.agency_id, "household_id": data.household_id, "spm_field": data.spm_field.value,
              "open": data.status not in ref.ReferralStatus.CLOSED,
              "escalated_to_agency_id": data.escalated_to_agency_id, "version": data.version}
    await session.execute(insert(table).values(referral_id=data.referral_id, **values)
                          .on_conflict_do_update(index_elements=["referral_id"], set_=values,
                                                 where=table.c.version < data.version))


#: Every event that carries the referral's state (the note event carries none).
HANDLERS: dict[str, Handler] = {event_type.name: on_referral for event_type in (
    ref.REFERRAL_CREATED, ref.REFERRAL_STATUS_CHANGED, ref.REFERRAL_REASSIGNED, ref.REFERRAL_SNAPSHOT,
    ref.REFERRAL_ROUTED, ref.REFERRAL_UNROUTED, ref.REFERRAL_ESCALATED, ref.REFERRAL_OVERDUE,
    ref.REFERRAL_NEED_RESOLVED)}
