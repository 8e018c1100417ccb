"""The per-field profile sections of DOMAIN.md §3 as pydantic v2 models.

Every item is optional (``None`` = not recorded); enum values are spelled exactly as DOMAIN.md spells them; every
string, list and mapping is bounded. Unknown keys are rejected (``extra="forbid"``).

A profile is one container per SPM field: ``household`` (the household section) and/or ``members`` (member id ->
member section), only where §3 defines that level:

=================== ========================== =======================
field               household                  members
=================== ========================== =======================
pendidikan          -                          PendidikanMember
kesehatan           -                          KesehatanMember
pekerjaan-umum      PekerjaanUmumHousehold     -
perumahan-rakyat    PerumahanHousehold         -
trantibumlinmas     TrantibumlinmasHousehold   -
sosial              SosialHousehold            SosialMember
=================== ========================== =======================

``PROFILE_MODELS[field].model_validate(body)`` validates the body of ``PUT /households/{id}/profiles/{field}``.
When each item was observed, and by which kader, is recorded by the caller, not in these sections.
"""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from shared.events.topics import SpmField

__all__ = [
    "HIGHEST_COMPLETED_ORDER",
    "MAX_MEMBERS",
    "PROFILE_MODELS",
    "AidProgramme",
    "AnyProfile",
    "Condition",
    "Disability",
    "DisasterDamage",
    "DisasterRisk",
    "DrinkingWaterSource",
    "EducationLevel",
    "Floor",
    "HealthInsurance",
    "HighestCompleted",
    "ImmunizationStatus",
    "KesehatanMember",
    "KesehatanProfile",
    "NeglectFlag",
    "PekerjaanUmumHousehold",
    "PekerjaanUmumProfile",
    "PendidikanMember",
    "PendidikanProfile",
    "PerumahanHousehold",
    "PerumahanRakyatProfile",
    "Relationship",
    "Roof",
    "Sex",
    "SosialHousehold",
    "SosialMember",
    "SosialProfile",
    "Tenure",
    "Toilet",
    "TrantibumlinmasHousehold",
    "TrantibumlinmasProfile",
    "Wall",
    "Wastewater",
]

#: At most this many members per household in one profile body.
MAX_MEMBERS = 50


# --- member core data (§3 "member"): used by the need rules' snapshots and the member API -----------------------


class Sex(StrEnum):
    MALE = "male"
    FEMALE = "female"


class Relationship(StrEnum):
    HEAD = "head"
    SPOUSE = "spouse"
    CHILD = "child"
    PARENT = "parent"
    IN_LAW = "in-law"
    GRANDCHILD = "grandchild"
    OTHER = "other"


class Disability(StrEnum):
    NONE = "none"
    PHYSICAL = "physical"
    INTELLECTUAL = "intellectual"
    MENTAL = "mental"
    SENSORY = "sensory"
    MULTIPLE = "multiple"


# --- pendidikan ---------------------------------------------------------------------------------------------------


class EducationLevel(StrEnum):
    PAUD = "paud"
    SD = "sd"
    SMP = "smp"
    SMA = "sma"
    SMK = "smk"
    SLB = "slb"
    PAKET_A = "paket-a"
    PAKET_B = "paket-b"
    PAKET_C = "paket-c"
    NONE = "none"


class HighestCompleted(StrEnum):
    NONE = "none"
    SD = "sd"
    SMP = "smp"
    SMA = "sma"
    DIPLOMA = "diploma"
    DEGREE = "degree"


#: Highest completed levels from lowest to highest ("below smp" = before smp in this order).
HIGHEST_COMPLETED_ORDER: tuple[HighestCompleted, ...] = tuple(HighestCompleted)


# --- kesehatan ----------------------------------------------------------------------------------------------------


class ImmunizationStatus(StrEnum):
    COMPLETE_FOR_AGE = "complete-for-age"
    INCOMPLETE = "incomplete"
    UNKNOWN = "unknown"


class HealthInsurance(StrEnum):
    JKN_PBI = "jkn-pbi"
    JKN_MANDIRI = "jkn-mandiri"
    NONE = "none"


# --- pekerjaan-umum -----------------------------------------------------------------------------------------------


class DrinkingWaterSource(StrEnum):
    PIPED = "piped"
    PROTECTED_WELL = "protected-well"
    PROTECTED_SPRING = "protected-spring"
    RAINWATER = "rainwater"
    BOTTLED = "bottled"
    UNPROTECTED_WELL = "unprotected-well"
    UNPROTECTED_SPRING = "unprotected-spring"
    SURFACE_WATER = "surface-water"
    OTHER = "other"


class Toilet(StrEnum):
    PRIVATE_WITH_SEPTIC = "private-with-septic"
    PRIVATE_NO_SEPTIC = "private-no-septic"
    SHARED = "shared"
    PUBLIC = "public"
    NONE = "none"


class Wastewater(StrEnum):
    SEWER = "sewer"
    SEPTIC = "septic"
    OPEN_DRAIN = "open-drain"
    NONE = "none"


# --- perumahan-rakyat ---------------------------------------------------------------------------------------------


class Floor(StrEnum):
    CERAMIC_OR_CEMENT = "ceramic-or-cement"
    WOOD = "wood"
    EARTH = "earth"


class Wall(StrEnum):
    MASONRY = "masonry"
    WOOD = "wood"
    BAMBOO_OR_OTHER = "bamboo-or-other"


class Roof(StrEnum):
    TILE_OR_METAL = "tile-or-metal"
    THATCH_OR_OTHER = "thatch-or-other"


class Condition(StrEnum):
    GOOD = "good"
    DAMAGED = "damaged"


class Tenure(StrEnum):
    OWN = "own"
    RENT = "rent"
    OTHER = "other"


class DisasterDamage(StrEnum):
    NONE = "none"
    LIGHT = "light"
    MODERATE = "moderate"
    HEAVY = "heavy"


# --- trantibumlinmas ----------------------------------------------------------------------------------------------


class DisasterRisk(StrEnum):
    FLOOD = "flood"
    LANDSLIDE = "landslide"
    EARTHQUAKE = "earthquake"
    TSUNAMI = "tsunami"
    VOLCANO = "volcano"
    FIRE = "fire"
    DROUGHT = "drought"
    EXTREME_WEATHER = "extreme-weather"


# --- sosial -------------------------------------------------------------------------------------------------------


class AidProgramme(StrEnum):
    PKH = "pkh"
    BPNT = "bpnt"
    PBI_JK = "pbi-jk"
    BLT_DESA = "blt-desa"
    BAZNAS = "baznas"
    OTHER = "other"


class NeglectFlag(StrEnum):
    NEGLECTED_CHILD = "neglected-child"
    NEGLECTED_ELDERLY = "neglected-elderly"
    NEGLECTED_DISABLED = "neglected-disabled"
    HOMELESS = "homeless"
    BEGGAR = "beggar"


# --- helpers ------------------------------------------------------------------------------------------------------

_T = TypeVar("_T")


def _unique(items: list[_T] | None) -> list[_T] | None:
    """Reject (rather than silently drop) a value listed twice."""
    if items is not None and len(set(items)) != len(items):
        raise ValueError("items must be unique")
    return items


#: What `_unique` enforces, as the OpenAPI document states it.
_UNIQUE: dict[str, Any] = {"uniqueItems": True}


_CONFIG = ConfigDict(extra="forbid", str_strip_whitespace=True)

OptBool = bool | None


# --- sections -----------------------------------------------------------------------------------------------------


class PendidikanMember(BaseModel):
    """Education of one member (school-age members, and adults' highest completed level)."""

    model_config = _CONFIG

    enrolled: OptBool = None
    level: EducationLevel | None = None
    school_name: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    highest_completed: HighestCompleted | None = None
    dropout_risk: OptBool = Field(default=None, description="The kader's judgement that the member may drop out")


class KesehatanMember(BaseModel):
    """Health of one member; child growth measurements are recorded separately (DOMAIN.md §5)."""

    model_config = _CONFIG

    immunization_status: ImmunizationStatus | None = Field(
        default=None, json_schema_extra={"readOnly": True},
        description="Read-only: computed from the recorded doses and the national schedule in force (README "
                    "\"Immunisation\"); refused on input")
    antenatal_visits: int | None = Field(default=None, ge=0, le=20, description="Antenatal visits this pregnancy")
    pregnant_muac_cm: float | None = Field(default=None, ge=5, le=60, allow_inf_nan=False,
                                           description="Mid-upper arm circumference of the pregnant woman, cm")
    systolic_bp: int | None = Field(default=None, ge=40, le=300, description="mmHg")
    diastolic_bp: int | None = Field(default=None, ge=20, le=200, description="mmHg")
    blood_sugar_mg_dl: int | None = Field(default=None, ge=20, le=1000)
    long_cough: OptBool = Field(default=None, description="Cough for 2 weeks or more")
    severe_mental_illness: OptBool = None
    health_insurance: HealthInsurance | None = None


class PekerjaanUmumHousehold(BaseModel):
    model_config = _CONFIG

    drinking_water_source: DrinkingWaterSource | None = None
    toilet: Toilet | None = None
    wastewater: Wastewater | None = None


class PerumahanHousehold(BaseModel):
    model_config = _CONFIG

    floor_area_m2: float | None = Field(default=None, gt=0, le=10_000, allow_inf_nan=False)
    occupants: int | None = Field(default=None, ge=1, le=100)
    floor: Floor | None = None
    wall: Wall | None = None
    roof: Roof | None = None
    roof_condition: Condition | None = None
    wall_condition: Condition | None = None
    tenure: Tenure | None = None
    disaster_damage: DisasterDamage | None = None
    relocation_affected: OptBool = None


class TrantibumlinmasHousehold(BaseModel):
    model_config = _CONFIG

    disaster_risk: Annotated[list[DisasterRisk], Field(max_length=len(DisasterRisk), json_schema_extra=_UNIQUE),
                             AfterValidator(_unique)] | None = None
    preparedness_informed: OptBool = None
    displaced: OptBool = None
    fire_hazard: OptBool = None
    public_order_report: Annotated[str, Field(min_length=1, max_length=2000)] | None = Field(
        default=None, description="Free text; public-order referrals are made manually only")


class SosialHousehold(BaseModel):
    model_config = _CONFIG

    dtsen_decile: int | None = Field(default=None, ge=1, le=10, description="DTSEN welfare decile; None = unknown")
    aid_received: Annotated[list[AidProgramme], Field(max_length=12)] | None = Field(
        default=None,
        description="Aid programmes received; None = not recorded, [] = none. Not deduplicated: the same programme "
                    "recorded twice is an input of the aid-overlap rule")


class SosialMember(BaseModel):
    model_config = _CONFIG

    neglect_flags: Annotated[list[NeglectFlag], Field(max_length=len(NeglectFlag), json_schema_extra=_UNIQUE),
                             AfterValidator(_unique)] | None = None
    lives_alone: OptBool = None


# --- one container per field --------------------------------------------------------------------------------------


class PendidikanProfile(BaseModel):
    model_config = _CONFIG

    members: dict[uuid.UUID, PendidikanMember] = Field(default_factory=dict, max_length=MAX_MEMBERS)


class KesehatanProfile(BaseModel):
    model_config = _CONFIG

    members: dict[uuid.UUID, KesehatanMember] = Field(default_factory=dict, max_length=MAX_MEMBERS)


class PekerjaanUmumProfile(BaseModel):
    model_config = _CONFIG

    household: PekerjaanUmumHousehold | None = None


class PerumahanRakyatProfile(BaseModel):
    model_config = _CONFIG

    household: PerumahanHousehold | None = None


class TrantibumlinmasProfile(BaseModel):
    model_config = _CONFIG

    household: TrantibumlinmasHousehold | None = None


class SosialProfile(BaseModel):
    model_config = _CONFIG

    household: SosialHousehold | None = None
    members: dict[uuid.UUID, SosialMember] = Field(default_factory=dict, max_length=MAX_MEMBERS)


AnyProfile = (PendidikanProfile | KesehatanProfile | PekerjaanUmumProfile | PerumahanRakyatProfile
              | TrantibumlinmasProfile | SosialProfile)

#: The container class of each field: ``PROFILE_MODELS[field].model_validate(body)``.
PROFILE_MODELS: dict[SpmField, type[BaseModel]] = {
    SpmField.PENDIDIKAN: PendidikanProfile,
    SpmField.KESEHATAN: KesehatanProfile,
    SpmField.PEKERJAAN_UMUM: PekerjaanUmumProfile,
    SpmField.PERUMAHAN_RAKYAT: PerumahanRakyatProfile,
    SpmField.TRANTIBUMLINMAS: TrantibumlinmasProfile,
    SpmField.SOSIAL: SosialProfile,
}
