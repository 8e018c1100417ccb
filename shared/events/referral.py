"""Events of the referral service on `posyandu.referral.<field>.v1`: every event carries the referral's state.

A field topic covers the whole country, so every agency of the field may read it: its events carry what an
integration needs to route and count (ids, field, category, urgency, status, agencies, village code, due times)
and nothing that identifies or describes a person (no NIK, masked or not, no name, no free text, no evidence):
no attribute is personal data (`shared/events/personal_data.py`). The assigned agency reads the rest through the
audited REST API. The key is the referral id.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel

from shared.events.catalogue import EventType, register
from shared.events.personal_data import NotPersonal
from shared.events.topics import SpmField, referral_topic


class ReferralStatus:
    """FHIR Task-aligned states; open until completed, failed, cancelled or rejected."""

    CLOSED = frozenset({"completed", "failed", "cancelled", "rejected"})


class ReferralData(BaseModel):
    referral_id: NotPersonal[uuid.UUID]
    need_id: NotPersonal[uuid.UUID | None]
    #: The household and member references: random ids, resolved only by the assigned agency's audited read.
    household_id: NotPersonal[uuid.UUID]
    member_id: NotPersonal[uuid.UUID | None]
    posyandu_id: NotPersonal[uuid.UUID]
    village_code: NotPersonal[str]
    spm_field: NotPersonal[SpmField]
    category: NotPersonal[str]
    urgency: NotPersonal[str]
    status: NotPersonal[str]
    #: The agency it is routed to; None while unrouted.
    agency_id: NotPersonal[uuid.UUID | None]
    respond_by: NotPersonal[datetime | None]
    complete_by: NotPersonal[datetime | None]
    version: NotPersonal[int]
    # Optional additions (v1 stays compatible): what happened last, and the SLA and need facts an agency acts on.
    #: The lifecycle action that produced this event (`submit`, `accept`, ..., `route`, `sweep`), when one did.
    action: NotPersonal[str | None] = None
    created_at: NotPersonal[datetime | None] = None
    #: When the agency first answered (received, accepted or rejected): the response deadline is then met.
    responded_at: NotPersonal[datetime | None] = None
    overdue_at: NotPersonal[datetime | None] = None
    escalated_at: NotPersonal[datetime | None] = None
    #: The province-level agency of the field the referral was escalated to.
    escalated_to_agency_id: NotPersonal[uuid.UUID | None] = None
    #: The previous agency, on a reassignment or re-routing (and on `unrouted`, the agency it left).
    previous_agency_id: NotPersonal[uuid.UUID | None] = None
    #: When the household's need stopped holding (the referral stays open until the agency or posyandu closes it).
    need_resolved_at: NotPersonal[datetime | None] = None


class ReferralNoteData(BaseModel):
    """A note was added; the text itself is read through the REST API (it may hold personal details)."""

    note_id: NotPersonal[uuid.UUID]
    referral_id: NotPersonal[uuid.UUID]
    spm_field: NotPersonal[SpmField]
    agency_id: NotPersonal[uuid.UUID | None]
    posyandu_id: NotPersonal[uuid.UUID]
    #: `posyandu`, `agency` or `system`: whose side wrote it, so each side knows when the other answered.
    author_side: NotPersonal[str]
    created_at: NotPersonal[datetime]


def _referral(verb: str, summary: str) -> EventType[ReferralData]:
    return register(f"posyandu.referral.{verb}.v1", ReferralData, publisher="referral", topic=referral_topic,
                    summary=summary)


REFERRAL_CREATED = _referral("created", "A referral was created (by a kader or from a detected need).")
REFERRAL_STATUS_CHANGED = _referral("status-changed", "A referral moved through its lifecycle.")
REFERRAL_REASSIGNED = _referral("reassigned", "An agency passed a referral to another agency of the same field.")
REFERRAL_SNAPSHOT = _referral("snapshot", "The current state of an open referral, re-published for late joiners.")
REFERRAL_ROUTED = _referral("routed", "An unrouted referral found its responsible agency (one appeared).")
REFERRAL_UNROUTED = _referral("unrouted", "A routed referral lost its agency (deactivated, or no longer serving its "
                              "field or region, or the household moved) and no agency holds its route now: it "
                              "waits unrouted, visible to the pembina; previous_agency_id names the agency.")
REFERRAL_NEED_RESOLVED = _referral("need-resolved", "The household's need no longer holds while the referral is "
                                   "open; the agency or the posyandu decides whether to close it.")
REFERRAL_OVERDUE = _referral("overdue", "A referral passed its response or completion deadline (sent once).")
REFERRAL_ESCALATED = _referral("escalated", "A referral still open after the escalation period; "
                               "escalated_to_agency_id names the field's province-level agency.")
REFERRAL_NOTE_ADDED = register("posyandu.referral.note-added.v1", ReferralNoteData, publisher="referral",
                               topic=referral_topic, summary="A note or outcome feedback was added to a referral.")

#: Every referral event that carries the referral's whole state (the note event carries none): its projections
#: handle them alike.
STATE_EVENTS = (REFERRAL_CREATED, REFERRAL_STATUS_CHANGED, REFERRAL_REASSIGNED, REFERRAL_SNAPSHOT, REFERRAL_ROUTED,
                REFERRAL_UNROUTED, REFERRAL_ESCALATED, REFERRAL_OVERDUE, REFERRAL_NEED_RESOLVED)
