"""Routing rule payloads."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.categories import CATEGORIES
from shared.events.registry import AgencyLevel
from shared.events.topics import SpmField
from shared.region_codes import REGION_PREFIX_PATTERN


class RuleBody(BaseModel):
    """Referrals of `spm_field` (of `category`, in `region_prefix`: each optional) go to `agency_id`, or to the
    agency of `agency_level`: exactly one of the two."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    spm_field: SpmField
    category: str | None = Field(default=None, max_length=60, description="A category of DOMAIN.md §6 of the field")
    region_prefix: str | None = Field(default=None, pattern=REGION_PREFIX_PATTERN,
                                      description="A province, regency/city, district or village code")
    agency_level: AgencyLevel | None = None
    agency_id: uuid.UUID | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if (self.agency_level is None) == (self.agency_id is None):
            raise ValueError("name exactly one of agency_level and agency_id")
        if self.category is not None and (
                self.category not in CATEGORIES or CATEGORIES[self.category].spm_field is not self.spm_field):
            raise ValueError(f"{self.category} is not a referral category of {self.spm_field.value}")
        return self


class RulePublic(BaseModel):
    id: int
    spm_field: SpmField
    category: str | None
    region_prefix: str | None
    agency_level: AgencyLevel | None
    agency_id: uuid.UUID | None
    version: int
    updated_at: datetime
