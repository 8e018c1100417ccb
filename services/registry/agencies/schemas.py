"""Agency (OPD) payloads."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.json_schema import SkipJsonSchema

from services.registry.posyandu.schemas import Address, Email, Name, Phone
from shared.events.registry import AgencyKind, AgencyLevel, Status
from shared.events.topics import SpmField


class AgencyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: Name
    level: AgencyLevel
    jurisdiction_code: str = Field(pattern=r"^[0-9]{2}([0-9]{2})?$",
                                   description="Province (2 digits) or regency/city (4 digits) it serves")
    spm_fields: list[SpmField] = Field(min_length=1, max_length=6)
    email: Email | None = None
    phone: Phone | None = None
    address: Address | None = None
    kind: AgencyKind = Field(default=AgencyKind.OPD,
                             description="`partner` for an organisation such as Baznas, Kemenag or BKKBN: it runs "
                                         "programmes but takes no routed referrals; fixed at registration")


class AgencyUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    # Omit a field to keep it; null only clears the optional ones (a null name or list would be a 500).
    name: Name | SkipJsonSchema[None] = None
    spm_fields: list[SpmField] | SkipJsonSchema[None] = Field(default=None, min_length=1, max_length=6)
    email: Email | None = None
    phone: Phone | None = None
    address: Address | None = None

    @field_validator("name", "spm_fields", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("omit the field to keep it; it cannot be null")
        return value


class AgencyPublic(BaseModel):
    id: uuid.UUID
    name: str
    level: AgencyLevel
    jurisdiction_code: str
    spm_fields: list[SpmField]
    email: str | None
    phone: str | None
    address: str | None
    kind: AgencyKind
    status: Status
    version: int
    created_at: datetime
    updated_at: datetime
