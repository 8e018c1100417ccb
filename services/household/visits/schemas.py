"""Visit payloads: the services one member received at a session, one typed section per life-cycle group.

The sections' items and bounds are the event's (shared.events.household), so the API and the event cannot drift;
the inputs only refuse unknown keys. A child's measurement is the measurements module's own input.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from services.household.measurements.service import MeasurementValues
from shared.events import household as ev

_FORBID = ConfigDict(extra="forbid")


class CounsellingTopic(StrEnum):
    """Penyuluhan given at the visit."""

    NUTRITION = "nutrition"
    BREASTFEEDING = "breastfeeding"
    CHILD_DEVELOPMENT = "child-development"
    IMMUNIZATION = "immunization"
    PREGNANCY_CARE = "pregnancy-care"
    FAMILY_PLANNING = "family-planning"
    HYGIENE_SANITATION = "hygiene-sanitation"
    REPRODUCTIVE_HEALTH = "reproductive-health"
    NON_COMMUNICABLE_DISEASE = "non-communicable-disease"
    MENTAL_HEALTH = "mental-health"
    ELDERLY_CARE = "elderly-care"
    OTHER = "other"


def _unique(items: list[CounsellingTopic]) -> list[CounsellingTopic]:
    if len(set(items)) != len(items):
        raise ValueError("items must be unique")
    return items


class ChildInput(ev.ChildServices):
    """A child under five: weighing and measuring as the measurements API takes them, and what was given."""

    model_config = _FORBID

    measurement: MeasurementValues | None = Field(default=None, description="Taken at the session's date")


class PregnancyInput(ev.PregnancyServices):
    model_config = _FORBID


class AdolescentInput(ev.AdolescentServices):
    model_config = _FORBID


class AdultInput(ev.AdultServices):
    """Adults (19-59) and the elderly (60+)."""

    model_config = _FORBID


class VisitCreate(BaseModel):
    model_config = _FORBID

    member_id: uuid.UUID
    child: ChildInput | None = Field(default=None, description="Children under 60 months")
    pregnancy: PregnancyInput | None = Field(default=None, description="Pregnant women")
    adolescent: AdolescentInput | None = Field(default=None, description="Adolescents aged 10-18")
    adult: AdultInput | None = Field(default=None, description="Adults and the elderly, from 19 years")
    counselling: Annotated[list[CounsellingTopic], Field(max_length=len(CounsellingTopic),
                                                         json_schema_extra={"uniqueItems": True}),
                           AfterValidator(_unique)] = Field(default_factory=list)

    @model_validator(mode="after")
    def _some_service(self) -> VisitCreate:
        sections = {"child": self.child, "pregnancy": self.pregnancy, "adolescent": self.adolescent,
                    "adult": self.adult}
        if empty := [name for name, section in sections.items()
                     if section is not None and not section.model_dump(exclude_none=True)]:
            raise ValueError(f"{', '.join(empty)}: a section records at least one item (or leave it out)")
        if not (any(sections.values()) or self.counselling):
            raise ValueError("a visit records at least one service: a group's section or counselling")
        return self


class VisitPublic(BaseModel):
    id: uuid.UUID
    session_id: uuid.UUID
    member_id: uuid.UUID
    household_id: uuid.UUID
    posyandu_id: uuid.UUID
    visited_on: date
    life_cycle_group: str
    age_months: int
    pregnant: bool
    child: ev.ChildVisitData | None
    pregnancy: ev.PregnancyServices | None
    adolescent: ev.AdolescentServices | None
    adult: ev.AdultVisitData | None
    counselling: list[str]
    measurement_id: uuid.UUID | None
    recorded_by: str
    recorded_at: datetime
