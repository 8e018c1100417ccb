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
    # Optional additions (v1 stays compatible): what happened last, and the SLA and need facts an agency acts on.
    #: The lifecycle action that produced this event (`submit`, `accept`, ..., `route`, `sweep`), when one did.
    action: str | None = None
    created_at: datetime | None = None
    #: When the agency first answered (received, accepted or rejected): the response deadline is then met.
    responded_at: datetime | None = None
    overdue_at: datetime | None = None
    escalated_at: datetime | None = None
    #: The province-level agency of the field the referral was escalated to.
    escalated_to_agency_id: uuid.UUID | None = None
    #: The previous agency, on a reassignment.
    previous_agency_id: uuid.UUID | None = None
    #: When the household's need stopped holding (the referral stays open until the agency or posyandu closes it).
    need_resolved_at: datetime | None = None


class ReferralNoteData(BaseModel):
    """A note was added; the text itself is read through the REST API (it may hold personal details)."""

    note_id: uuid.UUID
    referral_id: uuid.UUID
    spm_field: SpmField
    agency_id: uuid.UUID | None
    posyandu_id: uuid.UUID
    #: `posyandu`, `agency` or `system`: whose side wrote it, so each side knows when the other answered.
    author_side: str
    created_at: datetime


def _referral(verb: str, summary: str) -> EventType:
    return register(f"posyandu.referral.{verb}.v1", ReferralData, publisher="referral", topic=referral_topic,
                    summary=summary)


REFERRAL_CREATED = _referral("created", "A referral was created (by a kader or from a detected need).")
REFERRAL_STATUS_CHANGED = _referral("status-changed", "A referral moved through its lifecycle.")
REFERRAL_REASSIGNED = _referral("reassigned", "An agency passed a referral to another agency of the same field.")
REFERRAL_SNAPSHOT = _referral("snapshot", "The current state of an open referral, re-published for late joiners.")
REFERRAL_ROUTED = _referral("routed", "An unrouted referral found its responsible agency (one appeared).")
REFERRAL_NEED_RESOLVED = _referral("need-resolved", "The household's need no longer holds while the referral is "
                                   "open; the agency or the posyandu decides whether to close it.")
REFERRAL_OVERDUE = _referral("overdue", "A referral passed its response or completion deadline (sent once).")
REFERRAL_ESCALATED = _referral("escalated", "A referral still open after the escalation period; "
                               "escalated_to_agency_id names the field's province-level agency.")
REFERRAL_NOTE_ADDED = register("posyandu.referral.note-added.v1", ReferralNoteData, publisher="referral",
                               topic=referral_topic, summary="A note or outcome feedback was added to a referral.")
