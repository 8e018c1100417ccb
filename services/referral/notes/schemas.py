"""Note payloads."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class NoteCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    text: str = Field(min_length=1, max_length=4000)


class NotePublic(BaseModel):
    id: uuid.UUID
    referral_id: uuid.UUID
    author: str
    author_role: str
    #: `posyandu`, `agency` or `system`.
    author_side: str
    #: The agency an agency-side author wrote for (the assigned one, or the province agency it escalated to).
    author_agency_id: uuid.UUID | None = None
    #: For the referral's two sides only (free text about a family); null for a pembina.
    text: str | None
    created_at: datetime
