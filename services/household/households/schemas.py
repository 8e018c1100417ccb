"""Household and member payloads: Create/Update validate input, Public is what the API returns."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.json_schema import SkipJsonSchema

from services.household.dates import PastDate, expected_delivery_or_none, past_or_none
from services.household.profiles.schemas import Disability, Relationship, Sex
from shared.iso_dates import iso_or_none
from shared.region_codes import VILLAGE_CODE_PATTERN

Digits16 = Annotated[str, Field(pattern=r"^[0-9]{16}$")]
Name = Annotated[str, Field(min_length=1, max_length=200)]
RtRw = Annotated[str, Field(pattern=r"^[0-9]{1,3}$")]


class LifeCycleGroup(StrEnum):
    INFANT = "infant"
    TODDLER = "toddler"
    SCHOOL_AGE = "school-age"
    ADULT = "adult"
    ELDERLY = "elderly"


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class MemberCreate(_Input):
    nik: Digits16 | None = None
    name: Name
    sex: Sex
    birth_date: PastDate
    relationship: Relationship
    pregnant: bool = False
    expected_delivery_date: Annotated[date | None, iso_or_none, expected_delivery_or_none] = None
    disability: Disability = Disability.NONE


class MemberUpdate(_Input):
    # Omit a field to keep it; null only clears the optional ones (a null name or list would be a 500).
    nik: Digits16 | None = None
    name: Name | SkipJsonSchema[None] = None
    sex: Sex | SkipJsonSchema[None] = None
    birth_date: Annotated[date | SkipJsonSchema[None], iso_or_none, past_or_none] = None
    relationship: Relationship | SkipJsonSchema[None] = None
    pregnant: bool | SkipJsonSchema[None] = None
    expected_delivery_date: Annotated[date | None, iso_or_none, expected_delivery_or_none] = None
    disability: Disability | SkipJsonSchema[None] = None

    @field_validator("name", "sex", "birth_date", "relationship", "pregnant", "disability", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("omit the field to keep it; it cannot be null")
        return value


class HouseholdCreate(_Input):
    kk_number: Digits16
    village_code: str = Field(pattern=VILLAGE_CODE_PATTERN)
    posyandu_id: uuid.UUID
    address: str | None = Field(default=None, max_length=500)
    rt: RtRw | None = None
    rw: RtRw | None = None
    latitude: float | None = Field(default=None, ge=-11.5, le=6.5)
    longitude: float | None = Field(default=None, ge=94.5, le=141.5)
    members: list[MemberCreate] = Field(default_factory=list, max_length=30)


class HouseholdUpdate(_Input):
    # Omit a field to keep it; null only clears the optional ones (a null name or list would be a 500).
    kk_number: Digits16 | SkipJsonSchema[None] = None
    address: str | None = Field(default=None, max_length=500)
    rt: RtRw | None = None
    rw: RtRw | None = None
    latitude: float | None = Field(default=None, ge=-11.5, le=6.5)
    longitude: float | None = Field(default=None, ge=94.5, le=141.5)

    @field_validator("kk_number", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("omit the field to keep it; it cannot be null")
        return value


class HouseholdMove(_Input):
    posyandu_id: uuid.UUID
    village_code: str | None = Field(default=None, pattern=VILLAGE_CODE_PATTERN)


class MemberPublic(BaseModel):
    id: uuid.UUID
    household_id: uuid.UUID
    #: Full only for the household's kader and an agency holding a referral for it; masked for others.
    nik: str | None
    nik_masked: bool
    name: str
    sex: Sex
    birth_date: date
    age_years: int
    life_cycle_group: LifeCycleGroup
    relationship: Relationship
    pregnant: bool
    expected_delivery_date: date | None
    disability: Disability
    nik_region_mismatch: bool
    status: str
    version: int


class HouseholdPublic(BaseModel):
    id: uuid.UUID
    kk_number: str
    village_code: str
    posyandu_id: uuid.UUID
    address: str | None
    rt: str | None
    rw: str | None
    latitude: float | None
    longitude: float | None
    status: str
    needs_reassignment: bool
    version: int
    created_at: datetime
    updated_at: datetime
    members: list[MemberPublic]
