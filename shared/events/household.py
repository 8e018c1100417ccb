"""Events of the household service on `posyandu.household.v1`: households, members, profiles, needs.

They carry references and masked NIKs, never a full NIK; the subject and key are the household id,
so all events of one household stay in order.
"""

from __future__ import annotations

import uuid
from datetime import date
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from shared.events.catalogue import D, EventType, register
from shared.events.personal_data import NotPersonal, Personal
from shared.events.topics import HOUSEHOLD_TOPIC, SpmField


class HouseholdData(BaseModel):
    household_id: NotPersonal[uuid.UUID]
    kk_number_masked: Personal[str]
    village_code: NotPersonal[str]
    posyandu_id: NotPersonal[uuid.UUID]
    status: NotPersonal[str]
    needs_reassignment: NotPersonal[bool]
    version: NotPersonal[int]


class HouseholdMovedData(BaseModel):
    household_id: NotPersonal[uuid.UUID]
    from_posyandu_id: NotPersonal[uuid.UUID]
    to_posyandu_id: NotPersonal[uuid.UUID]
    village_code: NotPersonal[str]
    version: NotPersonal[int]


class MemberData(BaseModel):
    member_id: NotPersonal[uuid.UUID]
    household_id: NotPersonal[uuid.UUID]
    nik_masked: Personal[str | None]
    sex: Personal[str]
    birth_date: Personal[date]
    relationship: Personal[str]
    pregnant: Personal[bool]
    disability: Personal[str]
    status: NotPersonal[str]
    version: NotPersonal[int]


class ProfileDecisions(BaseModel):
    """What the household service's rules (its need-rule configuration) decide from this profile version, so that
    consumers count the verdict instead of repeating the rule; None where the field has no such rule or its
    inputs are not recorded."""

    #: Perumahan rakyat: an unfit house (rumah tidak layak huni).
    rtlh: Personal[bool | None] = None
    #: Pekerjaan umum: a safe (improved) drinking-water source.
    safe_water: Personal[bool | None] = None
    #: Sosial: a DTSEN decile among the poorest the reports count (1-4 by default).
    low_decile: Personal[bool | None] = None


class ProfileUpdatedData(BaseModel):
    household_id: NotPersonal[uuid.UUID]
    spm_field: NotPersonal[SpmField]
    version: NotPersonal[int]
    observed_on: NotPersonal[date | None]
    #: The section as recorded (no NIK or name; member sections are keyed by member id).
    profile: Personal[dict[str, Any]]
    #: The rules' verdicts on it (absent from events published before they were added).
    decided: Personal[ProfileDecisions | None] = None


class NeedData(BaseModel):
    need_id: NotPersonal[uuid.UUID]
    household_id: NotPersonal[uuid.UUID]
    member_id: NotPersonal[uuid.UUID | None]
    member_nik_masked: Personal[str | None]
    posyandu_id: NotPersonal[uuid.UUID]
    village_code: NotPersonal[str]
    spm_field: NotPersonal[SpmField]
    category: NotPersonal[str]
    urgency: NotPersonal[str]
    evidence: Personal[dict[str, Any]]
    #: Why a need was resolved when it was not by its condition clearing: a life event (`deceased`, `moved-out`,
    #: `household-closed`); None otherwise.
    resolution: NotPersonal[str | None] = None


def _household(name: str, model: type[D], summary: str) -> EventType[D]:
    return register(name, model, publisher="household", topic=HOUSEHOLD_TOPIC, summary=summary)


HOUSEHOLD_REGISTERED = _household("posyandu.household.registered.v1", HouseholdData,
                                  "A household (kartu keluarga) was registered at a posyandu.")
HOUSEHOLD_UPDATED = _household("posyandu.household.updated.v1", HouseholdData,
                               "A household's address, KK number or status changed.")
HOUSEHOLD_MOVED = _household("posyandu.household.moved.v1", HouseholdMovedData,
                             "A household moved to another posyandu.")
MEMBER_ADDED = _household("posyandu.member.added.v1", MemberData, "A member was added to a household.")
MEMBER_UPDATED = _household("posyandu.member.updated.v1", MemberData, "A member's details changed.")
PROFILE_UPDATED = _household("posyandu.profile.updated.v1", ProfileUpdatedData,
                             "A new version of a household's profile for one SPM field.")
NEED_DETECTED = _household("posyandu.household.need-detected.v1", NeedData,
                           "A need rule's condition became true for a household or member.")
NEED_RESOLVED = _household("posyandu.household.need-resolved.v1", NeedData,
                           "A need's condition is no longer true.")


class MeasurementData(BaseModel):
    measurement_id: NotPersonal[uuid.UUID]
    household_id: NotPersonal[uuid.UUID]
    member_id: NotPersonal[uuid.UUID]
    measured_on: NotPersonal[date]
    age_days: Personal[int]
    waz: Personal[float | None]
    haz: Personal[float | None]
    whz: Personal[float | None]
    waz_class: Personal[str | None]
    haz_class: Personal[str | None]
    whz_class: Personal[str | None]
    muac_class: Personal[str | None]
    kms_signal: Personal[str | None]


MEASUREMENT_RECORDED = _household("posyandu.measurement.recorded.v1", MeasurementData,
                                  "A child was measured; WHO z-scores and classes computed.")


class MemberMergedData(BaseModel):
    """Two records of one person became one: consumers re-point what they hold for `merged_id` to `survivor_id`."""

    survivor_id: NotPersonal[uuid.UUID]
    merged_id: NotPersonal[uuid.UUID]
    survivor_household_id: NotPersonal[uuid.UUID]
    merged_household_id: NotPersonal[uuid.UUID]


MEMBER_MERGED = _household("posyandu.member.merged.v1", MemberMergedData,
                           "A duplicate member record was merged into the survivor, which keeps both histories.")


# Life events (README: "Life events"). Each carries the member's or household's state after it (the fields of
# MemberData or HouseholdData), so a projection applies it as it applies an update: the newest version wins.


class MemberDiedData(MemberData):
    date_of_death: Personal[date]
    #: A coded cause category (README: "Life events"), never free text.
    cause_category: Personal[str | None]


class MemberMovedData(MemberData):
    """The member now belongs to `household_id` (a split, a marriage, a merge); its open needs went with it."""

    from_household_id: NotPersonal[uuid.UUID]
    moved_on: NotPersonal[date]
    reason: NotPersonal[str]
    #: The destination household's posyandu and village, so a consumer can re-route without waiting for it.
    posyandu_id: NotPersonal[uuid.UUID]
    village_code: NotPersonal[str]
    moved_need_ids: NotPersonal[list[uuid.UUID]]


class MemberMovedOutData(MemberData):
    """The member left for a place this service does not know (status `moved-out`)."""

    moved_out_on: NotPersonal[date]
    #: Where to, as far as the family knows: a region code of any level, or none.
    destination_region_code: NotPersonal[str | None]


class HouseholdClosedData(HouseholdData):
    closed_on: NotPersonal[date]
    #: `members-gone` (every member died or left) or `merged` (into `merged_into_household_id`).
    reason: NotPersonal[str]
    merged_into_household_id: NotPersonal[uuid.UUID | None]


MEMBER_DIED = _household("posyandu.member.died.v1", MemberDiedData,
                         "A member died: status deceased; the member's open needs are resolved.")
MEMBER_MOVED = _household("posyandu.member.moved.v1", MemberMovedData,
                          "A member moved to another household (a split, a marriage, a merge), taking its needs.")
MEMBER_MOVED_OUT = _household("posyandu.member.moved-out.v1", MemberMovedOutData,
                              "A member left for an unknown place or out of the area: status moved-out.")
HOUSEHOLD_CLOSED = _household("posyandu.household.closed.v1", HouseholdClosedData,
                              "A household closed (every member gone, or merged into another): status closed.")


# --- opening days: sessions and visits ----------------------------------------------------------------------------


class SessionData(BaseModel):
    """One opening day at one posyandu (a session); the subject and key are the session id."""

    session_id: NotPersonal[uuid.UUID]
    posyandu_id: NotPersonal[uuid.UUID]
    village_code: NotPersonal[str]
    session_date: NotPersonal[date]
    status: NotPersonal[str]
    version: NotPersonal[int]


class VisitCounts(BaseModel):
    """Visits of a closed session per life-cycle group (DOMAIN.md §8) on the session date; `pregnant` counts the
    pregnant women among them again."""

    infant: NotPersonal[int]
    toddler: NotPersonal[int]
    school_age: NotPersonal[int]
    adult: NotPersonal[int]
    elderly: NotPersonal[int]
    pregnant: NotPersonal[int]
    total: NotPersonal[int]


class SessionClosedData(SessionData):
    visits: NotPersonal[VisitCounts]


SESSION_OPENED = _household("posyandu.session.opened.v1", SessionData,
                            "A kader opened a session: one opening day at one posyandu, taking visits.")
SESSION_CLOSED = _household("posyandu.session.closed.v1", SessionClosedData,
                            "A session was closed (it takes no more visits), with its visits counted per "
                            "life-cycle group.")


class ChildServices(BaseModel):
    """What a child under five received (the measurement itself is a measurement, linked by its id)."""

    vitamin_a: Personal[bool | None] = Field(default=None, description="Vitamin A capsule (February and August only)")
    deworming: Personal[bool | None] = Field(default=None, description="Deworming tablet (from 12 months)")
    supplementary_feeding: Personal[bool | None] = Field(default=None, description="Supplementary feeding (PMT)")
    kms_book_held: Personal[bool | None] = Field(default=None, description="The KMS card / KIA book was shown")


class PregnancyServices(BaseModel):
    antenatal_visit_number: Personal[int | None] = Field(default=None, ge=1, le=20,
                                                         description="Which antenatal visit of this pregnancy")
    muac_cm: Personal[float | None] = Field(default=None, ge=5, le=60, allow_inf_nan=False)
    systolic_bp: Personal[int | None] = Field(default=None, ge=40, le=300, description="mmHg")
    diastolic_bp: Personal[int | None] = Field(default=None, ge=20, le=200, description="mmHg")
    iron_tablets: Personal[int | None] = Field(default=None, ge=0, le=180, description="Iron tablets (TTD) given")


class AdolescentServices(BaseModel):
    haemoglobin_g_dl: Personal[float | None] = Field(default=None, ge=2, le=25, allow_inf_nan=False)
    anaemia: Personal[bool | None] = Field(default=None, description="Anaemia screening result (true: anaemic)")
    muac_cm: Personal[float | None] = Field(default=None, ge=5, le=60, allow_inf_nan=False)


class ScreeningResult(StrEnum):
    NEGATIVE = "negative"
    POSITIVE = "positive"


class AdultServices(BaseModel):
    """Screening of adults and the elderly (blood pressure, blood sugar, BMI, TB symptoms, mental health)."""

    systolic_bp: Personal[int | None] = Field(default=None, ge=40, le=300, description="mmHg")
    diastolic_bp: Personal[int | None] = Field(default=None, ge=20, le=200, description="mmHg")
    blood_sugar_mg_dl: Personal[int | None] = Field(default=None, ge=20, le=1000)
    weight_kg: Personal[float | None] = Field(default=None, ge=20, le=300, allow_inf_nan=False)
    height_cm: Personal[float | None] = Field(default=None, ge=100, le=250, allow_inf_nan=False)
    long_cough: Personal[bool | None] = Field(default=None, description="Cough for 2 weeks or more")
    tb_screening: Personal[ScreeningResult | None] = Field(default=None, description="TB symptom screening")
    mental_health_screening: Personal[ScreeningResult | None] = None


class AdultVisitData(AdultServices):
    bmi: Personal[float | None] = Field(default=None, description="From weight and height, kg/m²")


class ChildVisitData(ChildServices):
    weighed: Personal[bool] = Field(default=False, description="A weight was recorded at this visit (SKDN's D)")
    #: The KMS signal of this visit's weighing (`N`, `T`, `O`, `B`; SKDN's N counts `N`).
    kms_signal: Personal[str | None] = None


class VisitData(BaseModel):
    """One member's visit at a session; the subject and key are the household id, like its measurements."""

    visit_id: NotPersonal[uuid.UUID]
    session_id: NotPersonal[uuid.UUID]
    posyandu_id: NotPersonal[uuid.UUID]
    household_id: NotPersonal[uuid.UUID]
    member_id: NotPersonal[uuid.UUID]
    visited_on: NotPersonal[date]
    life_cycle_group: Personal[str]
    age_months: Personal[int]
    pregnant: Personal[bool]
    child: Personal[ChildVisitData | None] = None
    pregnancy: Personal[PregnancyServices | None] = None
    adolescent: Personal[AdolescentServices | None] = None
    adult: Personal[AdultVisitData | None] = None
    counselling: Personal[list[str]] = Field(default_factory=list)
    measurement_id: NotPersonal[uuid.UUID | None] = None


VISIT_RECORDED = _household("posyandu.visit.recorded.v1", VisitData,
                            "A member's visit at a session was recorded with the services received per life-cycle "
                            "group (no NIK).")


class ImmunizationData(BaseModel):
    """A dose recorded or voided, with the child's status as computed after it (the status is never typed)."""

    dose_id: NotPersonal[uuid.UUID]
    household_id: NotPersonal[uuid.UUID]
    member_id: NotPersonal[uuid.UUID]
    vaccine: Personal[str]
    dose_number: Personal[int]
    given_on: NotPersonal[date]
    #: `posyandu`, `puskesmas`, `elsewhere` or `parent-report`.
    place: Personal[str]
    lot_number: Personal[str | None]
    age_days: Personal[int]
    #: Where the record came from: `api` or the FHIR system an imported resource names.
    source: NotPersonal[str]
    #: The member's computed status after this change (`complete-for-age`, `incomplete`, `unknown`).
    immunization_status: Personal[str]
    #: The schedule version it was computed with.
    schedule_version: NotPersonal[str | None]


IMMUNIZATION_RECORDED = _household("posyandu.immunization.recorded.v1", ImmunizationData,
                                   "A child's vaccine dose was recorded (at the posyandu, the puskesmas, elsewhere, "
                                   "or as the parent reported it); carries the computed immunisation status.")
IMMUNIZATION_VOIDED = _household("posyandu.immunization.voided.v1", ImmunizationData,
                                 "A recorded dose was voided as a mistake; carries the status computed without it.")
