"""HTTP routes for a referral's notes and outcome feedback."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Response

from services.referral.household_reads import HouseholdReader
from services.referral.notes import service
from services.referral.notes.schemas import NoteCreate, NotePublic
from services.referral.referrals.disclosure import NOTE_PRIVATE, Disclosure
from shared.auth import PrincipalDep
from shared.clock import NowDep
from shared.db import SessionDep
from shared.idempotency import IdempotencyKeyHeader, idempotent
from shared.responses import json_response

router = APIRouter(prefix="/api/v1/referrals", tags=["notes"])


@router.post("/{referral_id}/notes", status_code=201, response_model=NotePublic,
             summary="Add a note (the referral's posyandu or its assigned agency)")
async def add_note(referral_id: uuid.UUID, payload: NoteCreate, session: SessionDep, principal: PrincipalDep,
                   now: NowDep, idempotency_key: IdempotencyKeyHeader = None) -> Response:
    async def create() -> Response:
        note = await service.add(session=session, principal=principal, referral_id=referral_id, text=payload.text,
                                 now=now)
        return json_response(NotePublic.model_validate(note, from_attributes=True), 201)

    return await idempotent(session, key=idempotency_key, principal=principal,
                            scope=f"POST /referrals/{referral_id}/notes", payload=payload, create=create)


@router.get("/{referral_id}/notes", response_model=list[NotePublic], summary="A referral's notes, oldest first")
async def list_notes(referral_id: uuid.UUID, session: SessionDep, principal: PrincipalDep, now: NowDep) -> Any:
    referral, notes = await service.list_notes(session=session, principal=principal, referral_id=referral_id)
    # Notes are free text between the posyandu and the agency about a family: their reads are audited.
    disclosure = Disclosure.of(principal, referral)
    reader = await HouseholdReader.of(session, principal)
    await reader.record(session, household_id=referral.household_id, village_code=referral.village_code,
                        resource_type="referral.notes", resource_id=referral_id, now=now,
                        purpose=f"referral notes read by {principal.role.value}", fields=disclosure.shown(NOTE_PRIVATE))
    return disclosure.notes(notes)
