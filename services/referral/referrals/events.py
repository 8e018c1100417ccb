"""A referral as event data, and its events on the field's topic (keyed by referral id, `spmfield`, `regioncode`)."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from services.referral.tables import Referral
from services.referral.webhooks.service import queue_deliveries
from shared.events import referral as ev
from shared.events.catalogue import EventType
from shared.events.envelope import CloudEvent
from shared.events.topics import SpmField
from shared.outbox import publish_many


def referral_data(r: Referral, *, action: str | None = None,
                  previous_agency_id: uuid.UUID | None = None) -> ev.ReferralData:
    """What an integration routes and counts by: references, category, urgency, status, deadlines; nothing personal.

    No masked NIK (it keeps the district code and serial), name, evidence or text: every agency of the field may
    read the topic; the assigned agency reads those through the audited REST API.
    """
    return ev.ReferralData(
        referral_id=r.id, need_id=r.need_id, household_id=r.household_id, member_id=r.member_id,
        posyandu_id=r.posyandu_id, village_code=r.village_code,
        spm_field=SpmField(r.spm_field), category=r.category, urgency=r.urgency, status=r.status,
        agency_id=r.agency_id, respond_by=r.respond_by, complete_by=r.complete_by, version=r.version,
        action=action, created_at=r.created_at, responded_at=r.responded_at, overdue_at=r.overdue_at,
        escalated_at=r.escalated_at, escalated_to_agency_id=r.escalated_to_agency_id,
        previous_agency_id=previous_agency_id, need_resolved_at=r.need_resolved_at)


def new_event(event_type: EventType[ev.ReferralData], referral: Referral, *, action: str | None = None,
              previous_agency_id: uuid.UUID | None = None) -> CloudEvent:
    """A referral's event on its field's topic (keyed by referral id), not yet written."""
    return event_type.new(referral_data(referral, action=action, previous_agency_id=previous_agency_id),
                          subject=str(referral.id), regioncode=referral.village_code,
                          spmfield=SpmField(referral.spm_field))


async def emit(session: AsyncSession, event_type: EventType, referral: Referral, *, action: str | None = None,
               previous_agency_id: uuid.UUID | None = None) -> None:
    event = new_event(event_type, referral, action=action, previous_agency_id=previous_agency_id)
    await publish_many(session, [event])
    # The agency's webhooks get the same event (same id) in the same transaction.
    await queue_deliveries(session, event, referral)
