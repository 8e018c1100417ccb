"""Notes and outcome feedback on a referral, in both directions (posyandu <-> agency), and the system's own."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from services.referral.household_reads import HouseholdReader
from services.referral.notes.schemas import NotePublic
from services.referral.referrals.access import side_of
from services.referral.referrals.disclosure import NOTE_PRIVATE, Disclosure
from services.referral.referrals.lifecycle import Side
from services.referral.tables import Referral, ReferralNote
from shared.auth import Principal
from shared.errors import Forbidden
from shared.events import referral as ev
from shared.events.topics import SpmField
from shared.outbox import publish

SYSTEM_SIDE = "system"


async def write_note(session: AsyncSession, referral: Referral, *, author: str, author_role: str, side: str,
                     text: str, now: datetime, author_agency_id: uuid.UUID | None = None) -> ReferralNote:
    """Store a note and announce it (the event says a note exists; its text is read through the API)."""
    note = ReferralNote(referral_id=referral.id, author=author, author_role=author_role, author_side=side, text=text,
                        author_agency_id=author_agency_id, created_at=now)
    session.add(note)
    await session.flush()
    await publish(session, ev.REFERRAL_NOTE_ADDED,
                  ev.ReferralNoteData(note_id=note.id, referral_id=referral.id, spm_field=SpmField(referral.spm_field),
                                      agency_id=referral.agency_id, posyandu_id=referral.posyandu_id,
                                      author_side=side, created_at=now),
                  subject=str(referral.id), regioncode=referral.village_code, spmfield=SpmField(referral.spm_field))
    return note


async def add(*, session: AsyncSession, principal: Principal, referral: Referral, text: str,
              now: datetime) -> ReferralNote:
    """Adds a note from the posyandu side or the assigned agency (also after closing: outcome feedback) to a
    referral the caller may read (locked: dependencies.LockedReferral)."""
    side = side_of(principal, referral)
    if side is None:
        raise Forbidden("Only the referral's posyandu and its assigned agency write notes.")
    # Of an escalated referral two agencies write: the note names the one its author acts for.
    return await write_note(session, referral, author=principal.sub, author_role=principal.role.value,
                            side=side.value, text=text, now=now,
                            author_agency_id=principal.agency_id if side is Side.AGENCY else None)


async def list_notes(*, session: AsyncSession, principal: Principal, referral: Referral,
                     now: datetime) -> list[NotePublic]:
    """Gets the notes of a referral the caller may read, oldest first, as it may see them. Notes are free text
    between the posyandu and the agency about a family: the read is audited."""
    rows = await session.execute(select(ReferralNote).where(ReferralNote.referral_id == referral.id)
                                 .order_by(col(ReferralNote.created_at), col(ReferralNote.id)))
    disclosure = Disclosure.of(principal, referral)
    reader = await HouseholdReader.of(session, principal)
    await reader.record(session, household_id=referral.household_id, village_code=referral.village_code,
                        resource_type="referral.notes", resource_id=referral.id, now=now,
                        purpose=f"referral notes read by {principal.role.value}", fields=disclosure.shown(NOTE_PRIVATE))
    return disclosure.notes(rows.scalars())
