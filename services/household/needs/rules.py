"""The need-detection rules of DOMAIN.md §6 as pure functions over a household snapshot.

:func:`detect` returns every need whose condition holds on ``today``, keyed by ``(member id or None, category)``
(the household is implied by the snapshot). The caller compares it with the household's stored open needs through
:func:`diff` and emits the events: a need is *detected* when its key appears, *resolved* when its key disappears;
an unchanged condition emits nothing. A need whose key stays but whose urgency changes (e.g. underweight normal ->
high at BGM) is not a new need: :func:`diff` lists it in ``changed`` so the caller can update the open referral.
Changes of evidence alone (a new z-score with the same outcome) are not reported.

Conventions where DOMAIN.md is silent:

* Unrecorded data (``None``) never makes a rule fire: "``enrolled`` false" means recorded false. One exception is
  kesetaraan, for adults (see :class:`~services.household.needs.config.NeedRulesConfig`).
* Ages are whole years (whole months for child rules) on ``today``; age ranges are inclusive.
* Child growth rules read the latest measurement and apply while the child is at most 60 months old; the MUAC
  threshold applies when the child was 6-59 months old at that measurement.
* Pregnancy month: conception = expected delivery date - 280 days; month = gestational days // 30 + 1, capped at
  10; the antenatal visits due by the start of each month come from ``anc_due_visits_by_month``.
* Household-level categories have ``member_id`` None; pendidikan.*, kesehatan.*, sosial.neglected-*,
  sosial.homeless and sosial.health-insurance are per member. Profile sections of ids that are not members of the
  snapshot are ignored.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, NamedTuple, TypeVar

from pydantic import BaseModel

from services.household.dates import age_in_months, age_in_years
from services.household.immunization.status import ImmunizationStatus
from services.household.needs.config import CATEGORIES, DEFAULT_CONFIG, NeedRulesConfig, Urgency
from services.household.profiles.schemas import (
    HIGHEST_COMPLETED_ORDER,
    PROFILE_MODELS,
    AnyProfile,
    HighestCompleted,
    KesehatanMember,
    KesehatanProfile,
    PekerjaanUmumHousehold,
    PekerjaanUmumProfile,
    PendidikanMember,
    PendidikanProfile,
    PerumahanHousehold,
    PerumahanRakyatProfile,
    SosialHousehold,
    SosialMember,
    SosialProfile,
    TrantibumlinmasProfile,
)
from shared.events.topics import SpmField

__all__ = [
    "DetectedNeed",
    "GrowthSnapshot",
    "HouseholdSnapshot",
    "MemberSnapshot",
    "NeedDiff",
    "NeedKey",
    "ProgrammeAid",
    "age_in_months",
    "age_in_years",
    "detect",
    "diff",
    "overlapping_fields",
    "pregnancy_month",
]

#: (member id, or None for a household-level need; category code). The household is the snapshot's.
NeedKey = tuple[uuid.UUID | None, str]


@dataclass(frozen=True, slots=True)
class GrowthSnapshot:
    """The classification inputs of a child's latest measurement (DOMAIN.md §5)."""

    measured_on: date
    waz: float | None = None
    haz: float | None = None
    whz: float | None = None
    muac_cm: float | None = None
    #: Weight not increasing in two consecutive monthly weighings (KMS `2T`).
    two_t: bool = False


@dataclass(frozen=True, slots=True)
class MemberSnapshot:
    member_id: uuid.UUID
    birth_date: date
    sex: str
    relationship: str
    pregnant: bool = False
    expected_delivery_date: date | None = None
    disability: str = "none"
    growth: GrowthSnapshot | None = None
    #: The immunisation status computed from the doses and the schedule in force on the day (immunization/status.py;
    #: never typed). None: not computed (not an under-five, or nothing to compute from).
    immunization: ImmunizationStatus | None = None


@dataclass(frozen=True, slots=True)
class ProgrammeAid:
    """An agency programme whose beneficiary list names the household (a confirmed match), and what it serves."""

    programme_id: uuid.UUID
    spm_field: SpmField
    service_type: str
    period_start: date
    period_end: date


@dataclass(frozen=True, slots=True)
class HouseholdSnapshot:
    """What the rules see of one household: its members, its profile containers by field, and the programme lists
    it is on (confirmed matches, loaded by the caller: the rules query nothing)."""

    household_id: uuid.UUID
    members: Sequence[MemberSnapshot] = ()
    profiles: Mapping[SpmField, AnyProfile] = field(default_factory=dict)
    programme_aid: Sequence[ProgrammeAid] = ()

    def __post_init__(self) -> None:
        for spm_field, profile in self.profiles.items():
            expected = PROFILE_MODELS[SpmField(spm_field)]
            if not isinstance(profile, expected):
                raise TypeError(f"the {spm_field} profile must be a {expected.__name__}, not {type(profile).__name__}")


@dataclass(frozen=True, slots=True)
class DetectedNeed:
    spm_field: SpmField
    category: str
    member_id: uuid.UUID | None
    urgency: Urgency
    #: Why the rule fired: JSON-serialisable values only (numbers, strings, booleans, None, lists).
    evidence: Mapping[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> NeedKey:
        return (self.member_id, self.category)


class NeedDiff(NamedTuple):
    """What changed between the stored open needs and today's detection."""

    #: Keys new today: emit "need detected".
    detected: list[DetectedNeed]
    #: Keys no longer detected: emit "need resolved".
    resolved: list[NeedKey]
    #: Keys still detected with another urgency (not new needs): update the open need and its referral.
    changed: list[DetectedNeed]


# --- helpers ------------------------------------------------------------------------------------------------------


def pregnancy_month(expected_delivery_date: date, on: date, config: NeedRulesConfig = DEFAULT_CONFIG) -> int:
    """Month of pregnancy (1 .. 10) on a day, from the expected delivery date (conception = EDD - 280 days)."""
    gestational_days = config.pregnancy_length_days - (expected_delivery_date - on).days
    return min(10, max(0, gestational_days) // config.pregnancy_month_days + 1)


_P = TypeVar("_P", bound=BaseModel)


def _profile(snapshot: HouseholdSnapshot, spm_field: SpmField, cls: type[_P]) -> _P | None:
    profile = snapshot.profiles.get(spm_field)
    return profile if isinstance(profile, cls) else None


def _need(category: str, member_id: uuid.UUID | None, evidence: dict[str, Any],
          urgency: Urgency | str | None = None) -> DetectedNeed:
    info = CATEGORIES[category]
    return DetectedNeed(spm_field=info.spm_field, category=category, member_id=member_id,
                        urgency=Urgency(urgency) if urgency is not None else info.default_urgency, evidence=evidence)


def _s(value: Any) -> Any:
    """Enum members as their plain string value, for JSON evidence."""
    return None if value is None else str(value)


class _Context:
    def __init__(self, snapshot: HouseholdSnapshot, today: date, config: NeedRulesConfig) -> None:
        self.snapshot = snapshot
        self.today = today
        self.config = config
        self.pendidikan = _profile(snapshot, SpmField.PENDIDIKAN, PendidikanProfile)
        self.kesehatan = _profile(snapshot, SpmField.KESEHATAN, KesehatanProfile)
        self.pekerjaan_umum = _profile(snapshot, SpmField.PEKERJAAN_UMUM, PekerjaanUmumProfile)
        self.perumahan = _profile(snapshot, SpmField.PERUMAHAN_RAKYAT, PerumahanRakyatProfile)
        self.trantibumlinmas = _profile(snapshot, SpmField.TRANTIBUMLINMAS, TrantibumlinmasProfile)
        self.sosial = _profile(snapshot, SpmField.SOSIAL, SosialProfile)

    @property
    def decile(self) -> int | None:
        section: SosialHousehold | None = self.sosial.household if self.sosial else None
        return section.dtsen_decile if section else None


# --- pendidikan ---------------------------------------------------------------------------------------------------


def _pendidikan(ctx: _Context, member: MemberSnapshot, section: PendidikanMember) -> Iterator[DetectedNeed]:
    cfg, mid = ctx.config, member.member_id
    age = age_in_years(member.birth_date, ctx.today)
    not_enrolled = section.enrolled is False
    if not_enrolled and cfg.ats_min_age <= age <= cfg.ats_max_age:
        yield _need("pendidikan.ats", mid, {"age_years": age, "enrolled": False})
    if not_enrolled and cfg.paud_min_age <= age <= cfg.paud_max_age:
        yield _need("pendidikan.paud", mid, {"age_years": age, "enrolled": False})
    if section.dropout_risk is True:
        yield _need("pendidikan.dropout-risk", mid, {"dropout_risk": True})
    if (section.highest_completed is not None and cfg.kesetaraan_min_age <= age <= cfg.kesetaraan_max_age
            and HIGHEST_COMPLETED_ORDER.index(section.highest_completed)
            < HIGHEST_COMPLETED_ORDER.index(HighestCompleted(cfg.kesetaraan_required_level))
            and (not_enrolled
                 or (section.enrolled is None and age >= cfg.kesetaraan_unrecorded_enrolment_min_age))):
        yield _need("pendidikan.kesetaraan", mid, {"age_years": age, "enrolled": section.enrolled,
                                                    "highest_completed": _s(section.highest_completed)})
    if (not_enrolled and member.disability != "none"
            and cfg.special_needs_min_age <= age <= cfg.special_needs_max_age):
        yield _need("pendidikan.special-needs", mid,
                    {"age_years": age, "disability": _s(member.disability), "enrolled": False})


# --- kesehatan ----------------------------------------------------------------------------------------------------


def _growth(ctx: _Context, member: MemberSnapshot) -> Iterator[DetectedNeed]:
    cfg, mid, growth = ctx.config, member.member_id, member.growth
    if growth is None or not 0 <= age_in_months(member.birth_date, ctx.today) <= cfg.growth_max_age_months:
        return
    measured = {"measured_on": growth.measured_on.isoformat()}
    severe: dict[str, Any] = {}
    if growth.whz is not None and growth.whz < cfg.severe_wasting_whz:
        severe["whz"] = growth.whz
    months_at_measurement = age_in_months(member.birth_date, growth.measured_on)
    if (growth.muac_cm is not None and growth.muac_cm < cfg.severe_muac_cm
            and cfg.muac_min_age_months <= months_at_measurement <= cfg.muac_max_age_months):
        severe["muac_cm"] = growth.muac_cm
    if severe:
        yield _need("kesehatan.severe-malnutrition", mid, {**severe, **measured})
    if growth.whz is not None and cfg.severe_wasting_whz <= growth.whz < cfg.wasting_whz:
        yield _need("kesehatan.wasting", mid, {"whz": growth.whz, **measured})
    if growth.haz is not None and growth.haz < cfg.stunting_haz:
        yield _need("kesehatan.stunting", mid, {"haz": growth.haz, **measured})
    low_waz = growth.waz is not None and growth.waz < cfg.underweight_waz
    if low_waz or growth.two_t:
        bgm = growth.waz is not None and growth.waz < cfg.bgm_waz
        yield _need("kesehatan.underweight", mid, {"waz": growth.waz, "two_t": growth.two_t, "bgm": bgm, **measured},
                    Urgency.HIGH if bgm else Urgency.NORMAL)


def _pregnancy(ctx: _Context, member: MemberSnapshot, section: KesehatanMember | None) -> Iterator[DetectedNeed]:
    cfg = ctx.config
    if not member.pregnant:
        return
    age = age_in_years(member.birth_date, ctx.today)
    reasons: list[str] = []
    evidence: dict[str, Any] = {"age_years": age}
    if age < cfg.pregnancy_min_safe_age or age > cfg.pregnancy_max_safe_age:
        reasons.append("age")
    if section is not None and section.pregnant_muac_cm is not None:
        evidence["pregnant_muac_cm"] = section.pregnant_muac_cm
        if section.pregnant_muac_cm < cfg.pregnancy_min_muac_cm:
            reasons.append("muac")
    if section is not None and section.antenatal_visits is not None and member.expected_delivery_date is not None:
        month = pregnancy_month(member.expected_delivery_date, ctx.today, cfg)
        due = cfg.anc_due_visits(month)
        evidence.update(pregnancy_month=month, antenatal_visits=section.antenatal_visits, antenatal_visits_due=due)
        if section.antenatal_visits < due:
            reasons.append("antenatal-visits")
    if reasons:
        yield _need("kesehatan.high-risk-pregnancy", member.member_id, {"reasons": reasons, **evidence})


def _kesehatan(ctx: _Context, member: MemberSnapshot, section: KesehatanMember | None) -> Iterator[DetectedNeed]:
    cfg, mid = ctx.config, member.member_id
    yield from _growth(ctx, member)
    yield from _pregnancy(ctx, member, section)
    months = age_in_months(member.birth_date, ctx.today)
    if (member.immunization is not None and member.immunization.status == "incomplete"
            and 0 <= months <= cfg.immunization_max_age_months):
        yield _need("kesehatan.immunization", mid, {
            "age_months": months, "immunization_status": "incomplete",
            "schedule_version": member.immunization.schedule_version,
            "overdue": [f"{d.vaccine}-{d.dose}" for d in member.immunization.overdue]})
    if section is None:
        return
    systolic, diastolic = section.systolic_bp, section.diastolic_bp
    if (age_in_years(member.birth_date, ctx.today) >= cfg.hypertension_min_age
            and ((systolic is not None and systolic >= cfg.hypertension_systolic)
                 or (diastolic is not None and diastolic >= cfg.hypertension_diastolic))):
        yield _need("kesehatan.hypertension", mid, {"systolic_bp": systolic, "diastolic_bp": diastolic})
    if section.long_cough is True:
        yield _need("kesehatan.tb-suspect", mid, {"long_cough": True})
    if section.severe_mental_illness is True:
        yield _need("kesehatan.mental-health", mid, {"severe_mental_illness": True})


# --- household-level fields ---------------------------------------------------------------------------------------


def unsafe_water(section: PekerjaanUmumHousehold, cfg: NeedRulesConfig) -> bool:
    """An unimproved drinking-water source (the drinking-water need; the reports' safe water is the opposite)."""
    return section.drinking_water_source is not None and section.drinking_water_source in cfg.unsafe_water_sources


def rtlh_reasons(section: PerumahanHousehold, cfg: NeedRulesConfig) -> tuple[list[str], dict[str, Any]]:
    """Why a house is unfit (rumah tidak layak huni), with the evidence: none for a fit house."""
    reasons: list[str] = []
    evidence: dict[str, Any] = {}
    if section.floor_area_m2 is not None and section.occupants:
        per_occupant = section.floor_area_m2 / section.occupants
        if per_occupant < cfg.rtlh_min_area_per_occupant_m2:
            reasons.append("floor-area-per-occupant")
            evidence.update(floor_area_m2=section.floor_area_m2, occupants=section.occupants,
                            floor_area_per_occupant_m2=round(per_occupant, 2))
    if section.floor is not None and section.floor in cfg.rtlh_floors:
        reasons.append("floor")
        evidence["floor"] = _s(section.floor)
    if section.roof_condition == "damaged":
        reasons.append("roof-condition")
        evidence["roof_condition"] = "damaged"
    if section.wall_condition == "damaged":
        reasons.append("wall-condition")
        evidence["wall_condition"] = "damaged"
    if (section.wall is not None and section.wall in cfg.rtlh_non_durable_walls
            and section.roof is not None and section.roof in cfg.rtlh_non_durable_roofs):
        reasons.append("non-durable-wall-and-roof")
        evidence.update(wall=_s(section.wall), roof=_s(section.roof))
    return reasons, evidence


def _pekerjaan_umum(ctx: _Context) -> Iterator[DetectedNeed]:
    section = ctx.pekerjaan_umum.household if ctx.pekerjaan_umum else None
    if section is None:
        return
    cfg = ctx.config
    if unsafe_water(section, cfg):
        yield _need("pekerjaan-umum.drinking-water", None, {"drinking_water_source": _s(section.drinking_water_source)})
    if section.toilet is not None and section.toilet in cfg.sanitation_urgency:
        yield _need("pekerjaan-umum.sanitation", None, {"toilet": _s(section.toilet)},
                    cfg.sanitation_urgency[section.toilet])
    if section.wastewater is not None and section.wastewater in cfg.unmanaged_wastewater:
        yield _need("pekerjaan-umum.wastewater", None, {"wastewater": _s(section.wastewater)})


def _perumahan(ctx: _Context) -> Iterator[DetectedNeed]:
    section = ctx.perumahan.household if ctx.perumahan else None
    if section is None:
        return
    reasons, evidence = rtlh_reasons(section, ctx.config)
    if reasons:
        yield _need("perumahan-rakyat.rtlh", None, {"reasons": reasons, **evidence})
    cfg = ctx.config
    if section.disaster_damage is not None and section.disaster_damage in cfg.disaster_damage_levels:
        yield _need("perumahan-rakyat.disaster-damage", None, {"disaster_damage": _s(section.disaster_damage)})
    if section.relocation_affected is True:
        yield _need("perumahan-rakyat.relocation", None, {"relocation_affected": True})


def _trantibumlinmas(ctx: _Context) -> Iterator[DetectedNeed]:
    section = ctx.trantibumlinmas.household if ctx.trantibumlinmas else None
    if section is None:
        return
    if section.disaster_risk and section.preparedness_informed is False:
        yield _need("trantibumlinmas.preparedness", None,
                    {"disaster_risk": [_s(risk) for risk in section.disaster_risk], "preparedness_informed": False})
    if section.displaced is True:
        yield _need("trantibumlinmas.displaced", None, {"displaced": True})
    if section.fire_hazard is True:
        yield _need("trantibumlinmas.fire-hazard", None, {"fire_hazard": True})


# --- sosial -------------------------------------------------------------------------------------------------------


def _sosial_member(ctx: _Context, member: MemberSnapshot, section: SosialMember | None,
                   health: KesehatanMember | None) -> Iterator[DetectedNeed]:
    cfg, mid, decile = ctx.config, member.member_id, ctx.decile
    flags = {str(flag) for flag in (section.neglect_flags or [])} if section else set()
    if "neglected-child" in flags:
        yield _need("sosial.neglected-child", mid, {"neglect_flag": "neglected-child"})
    age = age_in_years(member.birth_date, ctx.today)
    if "neglected-elderly" in flags:
        yield _need("sosial.neglected-elderly", mid, {"neglect_flag": "neglected-elderly"})
    elif (section is not None and section.lives_alone is True and age >= cfg.elderly_min_age
          and decile is not None and decile <= cfg.neglected_elderly_max_decile):
        yield _need("sosial.neglected-elderly", mid, {"age_years": age, "lives_alone": True, "dtsen_decile": decile})
    if "neglected-disabled" in flags:
        yield _need("sosial.neglected-disabled", mid, {"neglect_flag": "neglected-disabled"})
    if flags & {"homeless", "beggar"}:
        yield _need("sosial.homeless", mid, {"neglect_flags": sorted(flags & {"homeless", "beggar"})})
    if (health is not None and health.health_insurance == "none"
            and decile is not None and decile <= cfg.health_insurance_max_decile):
        yield _need("sosial.health-insurance", mid, {"health_insurance": "none", "dtsen_decile": decile})


def _sosial_household(ctx: _Context) -> Iterator[DetectedNeed]:
    cfg, decile = ctx.config, ctx.decile
    section = ctx.sosial.household if ctx.sosial else None
    aid = [str(programme) for programme in section.aid_received] if section and section.aid_received is not None \
        else None
    # Programme lists count from their period's first day to its last; a sosial one is aid received as well.
    listed = [p for p in ctx.snapshot.programme_aid if p.period_start <= ctx.today <= p.period_end]
    listed_sosial = [p for p in listed if p.spm_field == SpmField.SOSIAL]
    if decile is not None and aid == [] and not listed_sosial and decile <= cfg.aid_exclusion_max_decile:
        eligible = sorted(p for p, limit in cfg.programme_max_decile.items() if decile <= limit)
        yield _need("sosial.aid-exclusion", None,
                    {"dtsen_decile": decile, "aid_received": [], "eligible_programmes": eligible})
    if aid or listed:
        reasons: list[str] = []
        evidence: dict[str, Any] = {"dtsen_decile": decile, "aid_received": aid or []}
        if listed:
            evidence["programmes"] = sorted(str(p.programme_id) for p in listed)
        if decile is not None and decile >= cfg.aid_overlap_min_decile and (aid or listed_sosial):
            reasons.append("decile")
        duplicated = sorted(p for p, n in Counter(aid or []).items()
                            if n > 1 and p not in cfg.aid_duplicates_allowed)
        if duplicated:
            reasons.append("duplicate-programme")
            evidence["duplicated_programmes"] = duplicated
        overlapping = overlapping_fields(aid or [], listed)
        if overlapping:
            reasons.append("programme-overlap")
            evidence["overlapping_fields"] = overlapping
        if reasons:
            yield _need("sosial.aid-overlap", None, {"reasons": reasons, **evidence})
    displaced = bool(ctx.trantibumlinmas and ctx.trantibumlinmas.household
                     and ctx.trantibumlinmas.household.displaced is True)
    damage = ctx.perumahan.household.disaster_damage if ctx.perumahan and ctx.perumahan.household else None
    heavy = damage is not None and damage in cfg.disaster_victim_damage_levels
    if displaced or heavy:
        yield _need("sosial.disaster-victim", None, {"displaced": displaced, "disaster_damage": _s(damage)})


def overlapping_fields(profile_aid: Sequence[str], listed: Sequence[ProgrammeAid]) -> list[str]:
    """The SPM fields in which the household has two or more aid sources and at least one is a programme list:
    each listed programme is one source of its field, each distinct aid code of the sosial profile one source of
    `sosial` (PKH, BPNT, ... are social protection). Profile aid alone is the duplicate-programme and decile
    reasons' business, as before programme lists existed."""
    sources: dict[str, set[str]] = {}
    for programme in listed:
        sources.setdefault(str(programme.spm_field), set()).add(str(programme.programme_id))
    if SpmField.SOSIAL.value in sources:
        sources[SpmField.SOSIAL.value] |= {f"profile:{code}" for code in profile_aid}
    return sorted(f for f, found in sources.items() if len(found) >= 2)


# --- entry points -------------------------------------------------------------------------------------------------


def _all(ctx: _Context) -> Iterator[DetectedNeed]:
    for member in ctx.snapshot.members:
        mid = member.member_id
        education = ctx.pendidikan.members.get(mid) if ctx.pendidikan else None
        if education is not None:
            yield from _pendidikan(ctx, member, education)
        health = ctx.kesehatan.members.get(mid) if ctx.kesehatan else None
        yield from _kesehatan(ctx, member, health)
        yield from _sosial_member(ctx, member, ctx.sosial.members.get(mid) if ctx.sosial else None, health)
    yield from _pekerjaan_umum(ctx)
    yield from _perumahan(ctx)
    yield from _trantibumlinmas(ctx)
    yield from _sosial_household(ctx)


def detect(snapshot: HouseholdSnapshot, *, today: date,
           config: NeedRulesConfig = DEFAULT_CONFIG) -> dict[NeedKey, DetectedNeed]:
    """Every need whose condition holds for the household on ``today``, by (member id or None, category)."""
    return {need.key: need for need in _all(_Context(snapshot, today, config))}


def diff(previous: Mapping[NeedKey, DetectedNeed], current: Mapping[NeedKey, DetectedNeed]) -> NeedDiff:
    """(newly detected, resolved keys, urgency changed) between the stored open needs and today's :func:`detect`.

    A key in both with the same urgency is an unchanged condition: nothing to emit, even if the evidence differs.
    """
    detected = [need for key, need in current.items() if key not in previous]
    resolved = [key for key in previous if key not in current]
    changed = [need for key, need in current.items() if key in previous and previous[key].urgency != need.urgency]
    return NeedDiff(detected=detected, resolved=resolved, changed=changed)
