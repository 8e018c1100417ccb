"""HTTP routes for likely duplicate members: review, merge, dismiss."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from services.household.duplicates import service
from shared.auth import PrincipalDep, Writer
from shared.db import SessionDep

router = APIRouter(prefix="/api/v1/duplicates", tags=["duplicates"])



class DuplicateFlagPublic(BaseModel):
    id: uuid.UUID
    member_id: uuid.UUID
    candidate_id: uuid.UUID
    status: str
    created_at: datetime
    decided_by: str | None
    decided_at: datetime | None


class MergeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    survivor_id: uuid.UUID


@router.get("", response_model=list[DuplicateFlagPublic], summary="Likely duplicate members to review")
async def list_flags(session: SessionDep, principal: PrincipalDep,
                     status: Literal["open", "merged", "dismissed"] = "open") -> Any:
    flags = await service.visible_flags(session, principal, status)
    return [DuplicateFlagPublic.model_validate(f, from_attributes=True) for f in flags]


@router.post("/{flag_id}/merge", response_model=DuplicateFlagPublic,
             summary="Merge the two records into the survivor (it keeps both histories)")
async def merge(flag_id: uuid.UUID, payload: MergeRequest, session: SessionDep, principal: Writer) -> Any:
    flag, _, _ = await service.merge(session=session, principal=principal, flag_id=flag_id,
                                     survivor_id=payload.survivor_id)
    return DuplicateFlagPublic.model_validate(flag, from_attributes=True)


@router.post("/{flag_id}/dismiss", response_model=DuplicateFlagPublic, summary="Not the same person: close the flag")
async def dismiss(flag_id: uuid.UUID, session: SessionDep, principal: Writer) -> Any:
    flag = await service.dismiss(session=session, principal=principal, flag_id=flag_id)
    return DuplicateFlagPublic.model_validate(flag, from_attributes=True)
