"""SPM payloads: the service types as served, and the agencies' own target figures."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from shared.events.topics import SpmField
from shared.spm import GovernmentLevel

#: No region has more residents than this: a larger target is a typo.
MAX_TARGET = 1_000_000_000
FIRST_YEAR, LAST_YEAR = 2000, 2100


class ServiceTypePublic(BaseModel):
    version: str
    code: str
    spm_field: SpmField
    level: GovernmentLevel = Field(description="`province` or `regency` (regency/city) government owes it")
    name: str = Field(description="Indonesian name (jenis pelayanan dasar)")
    indicators: list[str] = Field(description="Reporting indicators that measure it")
    referral_categories: list[str] = Field(description="Referral categories that serve it")


class ServiceTypes(BaseModel):
    """The whole current list (about 40 rows: no pagination)."""

    version: str
    items: list[ServiceTypePublic]


class TargetWrite(BaseModel):
    model_config = ConfigDict(extra="forbid")

    target: int | None = Field(ge=0, le=MAX_TARGET, description="Residents who must receive the service; null "
                                                                "withdraws the agency's figure")
    agency_id: uuid.UUID | None = Field(default=None, description="Required for an admin; an agency's own id else")


class TargetFigurePublic(BaseModel):
    agency_id: uuid.UUID
    region_code: str
    year: int
    service_type: str
    target: int | None = Field(description="null: withdrawn (the computed target applies)")
    version: int
    updated_by: str
    updated_at: datetime
