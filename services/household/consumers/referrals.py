"""Handlers for the referral topics: which agency may read which household (while its referral is open)."""

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
        return
    values = {"agency_id": data.agency_id, "household_id": data.household_id, "spm_field": data.spm_field.value,
              "open": data.status not in ref.ReferralStatus.CLOSED}
    # One row per referral: a reassignment moves the access to the new agency; closing ends it.
    await session.execute(insert(table).values(referral_id=data.referral_id, **values)
                          .on_conflict_do_update(index_elements=["referral_id"], set_=values))


HANDLERS: dict[str, Handler] = {event_type.name: on_referral for event_type in (
    ref.REFERRAL_CREATED, ref.REFERRAL_STATUS_CHANGED, ref.REFERRAL_REASSIGNED, ref.REFERRAL_SNAPSHOT,
    ref.REFERRAL_ROUTED)}
