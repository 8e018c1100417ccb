"""Life-event payloads: a death, a move to a known household, a departure, a split, a merge, a closing.

The dates are bounded in the service (not before the member's birth, not in the future beyond the clock skew), by
the service's clock, so every bound reads the same "today".
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from services.household.households.schemas import Digits16, RtRw
from shared.iso_dates import IsoDate
from shared.region_codes import VILLAGE_CODE_PATTERN


class CauseCategory(StrEnum):
    """A coarse cause of death, as the family or the puskesmas reports it; never free text (it is health data)."""

    MATERNAL = "maternal"
    PERINATAL = "perinatal"
    INFECTIOUS_DISEASE = "infectious-disease"
    NON_COMMUNICABLE_DISEASE = "non-communicable-disease"
    MALNUTRITION = "malnutrition"
    ACCIDENT_INJURY = "accident-injury"
    DISASTER = "disaster"
    OLD_AGE = "old-age"
    OTHER = "other"
    UNKNOWN = "unknown"


class MoveReason(StrEnum):
    SPLIT = "split"
    MARRIAGE = "marriage"
    OTHER = "other"


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class DeathRecord(_Input):
    date_of_death: IsoDate
    cause_category: CauseCategory | None = None


class MemberMove(_Input):
    to_household_id: uuid.UUID
    moved_on: IsoDate
    reason: MoveReason = MoveReason.OTHER


class MemberMoveOut(_Input):
    moved_out_on: IsoDate
    #: Where to, if the family knows: a province, regency, district or village code (2, 4, 6 or 10 digits).
    destination_region_code: str | None = Field(default=None, pattern=r"^([0-9]{2}|[0-9]{4}|[0-9]{6}|[0-9]{10})$")


class HouseholdSplit(_Input):
    """Some members leave to form a new household (kartu keluarga) with its own KK number."""

    kk_number: Digits16
    member_ids: list[uuid.UUID] = Field(min_length=1, max_length=30)
    moved_on: IsoDate
    reason: MoveReason = MoveReason.SPLIT
    #: The new household's place; by default the source household's posyandu and village.
    posyandu_id: uuid.UUID | None = None
    village_code: str | None = Field(default=None, pattern=VILLAGE_CODE_PATTERN)
    address: str | None = Field(default=None, max_length=500)
    rt: RtRw | None = None
    rw: RtRw | None = None


class HouseholdMerge(_Input):
    """Every member of this household moves to `into_household_id`; this household closes (reason `merged`)."""

    into_household_id: uuid.UUID
    merged_on: IsoDate


class HouseholdClose(_Input):
    """Closing a household whose members have all died or left (record those first)."""

    closed_on: IsoDate


class LifeEventPublic(BaseModel):
    id: uuid.UUID
    #: `died`, `moved`, `moved-out` (of a member) or `closed` (of the household).
    kind: str
    household_id: uuid.UUID
    member_id: uuid.UUID | None
    occurred_on: date
    reason: str | None
    to_household_id: uuid.UUID | None
    destination_region_code: str | None
    cause_category: str | None
    recorded_by: str
    recorded_at: datetime
