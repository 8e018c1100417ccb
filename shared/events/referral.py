"""Events of the referral service on `posyandu.referral.<field>.v1`: every event carries the referral's state.

What an agency needs to act (category, urgency, due times, region codes, household and member references,
masked NIK), never a full NIK or health details. The key is the referral id.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel

from shared.events.catalogue import EventType, register
from shared.events.topics import SpmField, referral_topic


class ReferralStatus:
    """FHIR Task-aligned states; open until completed, failed, cancelled or rejected."""

    CLOSED = frozenset({"completed", "failed", "cancelled", "rejected"})


class ReferralData(BaseModel):
    referral_id: uuid.UUID
    need_id: uuid.UUID | None
    household_id: uuid.UUID
    member_id: uuid.UUID | None
    member_nik_masked: str | None
    posyandu_id: uuid.UUID
    village_code: str
    spm_field: SpmField
    category: str
    urgency: str
    status: str
    #: The agency it is routed to; None while unrouted.
    agency_id: uuid.UUID | None
    respond_by: datetime | None
    complete_by: datetime | None
    version: int


def _referral(verb: str, summary: str) -> EventType:
    return register(f"posyandu.referral.{verb}.v1", ReferralData, publisher="referral", topic=referral_topic,
                    summary=summary)


REFERRAL_CREATED = _referral("created", "A referral was created (by a kader or from a detected need).")
REFERRAL_STATUS_CHANGED = _referral("status-changed", "A referral moved through its lifecycle.")
REFERRAL_REASSIGNED = _referral("reassigned", "An agency passed a referral to another agency of the same field.")
REFERRAL_SNAPSHOT = _referral("snapshot", "The current state of an open referral, re-published for late joiners.")
