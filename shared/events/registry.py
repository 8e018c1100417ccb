"""Events of the registry service on `posyandu.registry.v1`: regions, posyandu, cadres and agencies."""

from __future__ import annotations

import uuid
from datetime import date
from enum import StrEnum

from pydantic import BaseModel, Field

from shared.events.catalogue import D, EventType, RegionCodePresence, register
from shared.events.personal_data import NotPersonal
from shared.events.topics import REGISTRY_TOPIC, SpmField
from shared.opening_days import MonthlyRule, Ordinal, Schedule, Weekday


class RegionLevel(StrEnum):
    PROVINCE = "province"
    REGENCY = "regency"
    DISTRICT = "district"
    VILLAGE = "village"


class AgencyLevel(StrEnum):
    PROVINCE = "province"
    REGENCY = "regency"


class AgencyKind(StrEnum):
    """`opd`: a regional government agency; `partner`: an organisation such as Baznas, Kemenag or BKKBN that runs
    programmes supporting posyandu but takes no routed referrals."""

    OPD = "opd"
    PARTNER = "partner"


class Status(StrEnum):
    ACTIVE = "active"
    INACTIVE = "inactive"


class RegionData(BaseModel):
    code: NotPersonal[str] = Field(pattern=r"^\d{2}(\d{2}(\d{2}(\d{4})?)?)?$")
    name: NotPersonal[str]
    level: NotPersonal[RegionLevel]
    parent_code: NotPersonal[str | None]
    #: `kabupaten`/`kota` for a regency, `kelurahan`/`desa`/`desa-adat` for a village, else None.
    kind: NotPersonal[str | None] = None
    #: The official list the region was last seen in (e.g. `kepmendagri-300.2.2-2138-2025`).
    list_version: NotPersonal[str]


class PosyanduData(BaseModel):
    posyandu_id: NotPersonal[uuid.UUID]
    code: NotPersonal[str]
    name: NotPersonal[str]
    village_code: NotPersonal[str]
    status: NotPersonal[Status]
    service_days: NotPersonal[list[str]]
    latitude: NotPersonal[float | None] = None
    longitude: NotPersonal[float | None] = None
    version: NotPersonal[int]


class CadreData(BaseModel):
    """A cadre's assignment; no name or contact (personal data stays behind the REST API)."""

    cadre_id: NotPersonal[uuid.UUID]
    posyandu_id: NotPersonal[uuid.UUID]
    duties: NotPersonal[list[SpmField]]
    status: NotPersonal[Status]
    since: NotPersonal[date | None] = None


class AgencyData(BaseModel):
    agency_id: NotPersonal[uuid.UUID]
    name: NotPersonal[str]
    level: NotPersonal[AgencyLevel]
    jurisdiction_code: NotPersonal[str]
    spm_fields: NotPersonal[list[SpmField]]
    status: NotPersonal[Status]
    version: NotPersonal[int]
    kind: NotPersonal[AgencyKind] = AgencyKind.OPD


def _registry(name: str, model: type[D], summary: str, *, regioncode: RegionCodePresence = "required"
              ) -> EventType[D]:
    """Posyandu and cadre events carry the posyandu's village as `regioncode`."""
    return register(name, model, publisher="registry", topic=REGISTRY_TOPIC, summary=summary, regioncode=regioncode)


def _region(name: str, summary: str) -> EventType[RegionData]:
    """A region has a `regioncode` only if it is a village (10 digits): provinces, regencies and districts don't."""
    return _registry(name, RegionData, summary, regioncode="optional")


def _agency(name: str, summary: str) -> EventType[AgencyData]:
    """An agency's jurisdiction is a province or regency, never one village: no `regioncode`."""
    return _registry(name, AgencyData, summary, regioncode="absent")


REGION_REGISTERED = _region("posyandu.region.registered.v1",
                            "A region of the official list was imported for the first time.")
REGION_RENAMED = _region("posyandu.region.renamed.v1", "A newer official list gave a region another name.")
REGION_RETIRED = _region("posyandu.region.retired.v1",
                         "A full import of a newer list no longer holds this region; whoever references it "
                         "should be flagged for re-assignment.")
POSYANDU_REGISTERED = _registry("posyandu.posyandu.registered.v1", PosyanduData, "A posyandu was registered.")
POSYANDU_UPDATED = _registry("posyandu.posyandu.updated.v1", PosyanduData, "A posyandu's details changed.")
POSYANDU_DEACTIVATED = _registry("posyandu.posyandu.deactivated.v1", PosyanduData,
                                 "A posyandu stopped operating.")
CADRE_ASSIGNED = _registry("posyandu.cadre.assigned.v1", CadreData, "A cadre (kader) joined a posyandu.")
CADRE_UPDATED = _registry("posyandu.cadre.updated.v1", CadreData, "A cadre's duties changed.")
CADRE_UNASSIGNED = _registry("posyandu.cadre.unassigned.v1", CadreData, "A cadre left a posyandu.")
AGENCY_REGISTERED = _agency("posyandu.agency.registered.v1",
                            "An agency (OPD) was registered with its fields and jurisdiction.")
AGENCY_UPDATED = _agency("posyandu.agency.updated.v1", "An agency's fields, jurisdiction or details changed.")
AGENCY_DEACTIVATED = _agency("posyandu.agency.deactivated.v1", "An agency no longer takes referrals.")


class MonthlyRuleData(BaseModel):
    """E.g. the second Tuesday of every month (`second`, `tuesday`); `last` is the month's last such weekday."""

    ordinal: NotPersonal[Ordinal]
    weekday: NotPersonal[Weekday]


class MovedDayData(BaseModel):
    from_date: NotPersonal[date]
    to_date: NotPersonal[date]


class ScheduleRules(BaseModel):
    """The whole schedule: a monthly rule (or none) and the dated exceptions (the reasons stay behind the REST API,
    free text). A consumer computes any range of opening days from it (`to_schedule`)."""

    rule: NotPersonal[MonthlyRuleData | None]
    extra_days: NotPersonal[list[date]]
    moved_days: NotPersonal[list[MovedDayData]]
    cancelled_days: NotPersonal[list[date]]

    def to_schedule(self) -> Schedule:
        return Schedule(rule=MonthlyRule(self.rule.ordinal, self.rule.weekday) if self.rule else None,
                        extra=frozenset(self.extra_days), moved={m.from_date: m.to_date for m in self.moved_days},
                        cancelled=frozenset(self.cancelled_days))


class ScheduleData(ScheduleRules):
    """A posyandu's schedule after a change, with the opening days it gives for the coming months."""

    posyandu_id: NotPersonal[uuid.UUID]
    village_code: NotPersonal[str]
    #: The opening days from the first of the month of the change through `opening_days_to`.
    opening_days: NotPersonal[list[date]]
    opening_days_from: NotPersonal[date]
    opening_days_to: NotPersonal[date]
    version: NotPersonal[int]


SCHEDULE_CHANGED = _registry("posyandu.schedule.changed.v1", ScheduleData,
                             "A posyandu's opening days changed (monthly rule, extra, moved or cancelled days); "
                             "carries the whole schedule and the resulting dates for the coming months.")
