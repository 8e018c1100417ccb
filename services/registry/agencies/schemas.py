"""Agency (OPD) payloads."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from services.registry.posyandu.schemas import Address, Email, Name, Phone
from shared.events.registry import AgencyLevel, Status
from shared.events.topics import SpmField


class AgencyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: Name
    level: AgencyLevel
    jurisdiction_code: str = Field(pattern=r"^\d{2}(\d{2})?$",
                                   description="Province (2 digits) or regency/city (4 digits) it serves")
    spm_fields: list[SpmField] = Field(min_length=1, max_length=6)
    email: Email | None = None
    phone: Phone | None = None
    address: Address | None = None


class AgencyUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: Name | None = None
    spm_fields: list[SpmField] | None = Field(default=None, min_length=1, max_length=6)
    email: Email | None = None
    phone: Phone | None = None
    address: Address | None = None


class AgencyPublic(BaseModel):
    id: uuid.UUID
    name: str
    level: AgencyLevel
    jurisdiction_code: str
    spm_fields: list[SpmField]
    email: str | None
    phone: str | None
    address: str | None
    status: Status
    version: int
    created_at: datetime
    updated_at: datetime
