"""Posyandu and cadre payloads: Create/Update validate input, Public is what the API returns."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.json_schema import SkipJsonSchema

from shared.events.registry import Status
from shared.events.topics import SpmField
from shared.iso_dates import IsoDate
from shared.opening_days import Weekday
from shared.region_codes import VILLAGE_CODE_PATTERN

Name = Annotated[str, Field(min_length=2, max_length=200)]
Address = Annotated[str, Field(min_length=1, max_length=500)]
Latitude = Annotated[float, Field(ge=-11.5, le=6.5, description="WGS84; Indonesia spans about -11 to 6")]
Longitude = Annotated[float, Field(ge=94.5, le=141.5)]
Phone = Annotated[str, Field(pattern=r"^\+?[0-9][0-9 -]{5,24}$")]
Email = Annotated[str, Field(pattern=r"^[^@\s]{1,64}@[^@\s]{1,185}\.[A-Za-z]{2,}$", max_length=254)]


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class PosyanduCreate(_Input):
    code: str = Field(pattern=r"^[A-Z0-9][A-Z0-9.\-/]{2,39}$",
                      description="Official-style code, e.g. P3171011001-001")
    name: Name
    village_code: str = Field(pattern=VILLAGE_CODE_PATTERN)
    address: Address | None = None
    latitude: Latitude | None = None
    longitude: Longitude | None = None
    service_days: list[Weekday] = Field(default_factory=list, max_length=7)


class PosyanduUpdate(_Input):
    # Omit a field to keep it; null only clears the optional ones (a null name or list would be a 500).
    name: Name | SkipJsonSchema[None] = None
    village_code: str | SkipJsonSchema[None] = Field(default=None, pattern=VILLAGE_CODE_PATTERN)
    address: Address | None = None
    latitude: Latitude | None = None
    longitude: Longitude | None = None
    service_days: list[Weekday] | SkipJsonSchema[None] = Field(default=None, max_length=7)

    @field_validator("name", "village_code", "service_days", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("omit the field to keep it; it cannot be null")
        return value


class PosyanduPublic(BaseModel):
    id: uuid.UUID
    code: str
    name: str
    village_code: str
    address: str | None
    latitude: float | None
    longitude: float | None
    service_days: list[str]
    status: Status
    version: int
    created_at: datetime
    updated_at: datetime


class CadreCreate(_Input):
    name: Name
    phone: Phone | None = None
    email: Email | None = None
    duties: list[SpmField] = Field(min_length=1, max_length=6, description="The SPM fields this cadre looks after")
    since: IsoDate | None = None


class CadreUpdate(_Input):
    # Omit a field to keep it; null only clears the optional ones (a null name or list would be a 500).
    name: Name | SkipJsonSchema[None] = None
    phone: Phone | None = None
    email: Email | None = None
    duties: list[SpmField] | SkipJsonSchema[None] = Field(default=None, min_length=1, max_length=6)

    @field_validator("name", "duties", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("omit the field to keep it; it cannot be null")
        return value


class CadrePublic(BaseModel):
    id: uuid.UUID
    posyandu_id: uuid.UUID
    name: str
    phone: str | None
    email: str | None
    duties: list[SpmField]
    status: Status
    since: date | None
    version: int


class RegionCount(BaseModel):
    region_code: str
    region_name: str
    posyandu: int
