"""HTTP routes for a referral's notes and outcome feedback."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from services.referral.notes import service
from services.referral.notes.schemas import NoteCreate, NotePublic
from services.referral.referrals.dependencies import LockedReferral, ReadableReferral
from shared.auth import PrincipalDep
from shared.clock import NowDep
from shared.db import SessionDep
from shared.idempotency import IdempotencyKeyHeader, idempotent
from shared.responses import json_response

router = APIRouter(prefix="/api/v1/referrals", tags=["notes"])


@router.post("/{referral_id}/notes", status_code=201, response_model=NotePublic,
             summary="Add a note (the referral's posyandu or its assigned agency)")
async def add_note(referral: LockedReferral, payload: NoteCreate, session: SessionDep, principal: PrincipalDep,
                   now: NowDep, idempotency_key: IdempotencyKeyHeader = None) -> Response:
    async def create() -> Response:
        note = await service.add(session=session, principal=principal, referral=referral, text=payload.text, now=now)
        return json_response(NotePublic.model_validate(note, from_attributes=True), 201)

    return await idempotent(session, key=idempotency_key, principal=principal,
                            scope=f"POST /referrals/{referral.id}/notes", payload=payload, create=create)


@router.get("/{referral_id}/notes", response_model=list[NotePublic], summary="A referral's notes, oldest first")
async def list_notes(referral: ReadableReferral, session: SessionDep, principal: PrincipalDep, now: NowDep) -> Any:
    return await service.list_notes(session=session, principal=principal, referral=referral, now=now)
