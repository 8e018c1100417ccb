"""Events of the SPM input side on `posyandu.registry.v1`: agencies' programmes, their realisation, target figures.

The registry owns programmes (an agency's or partner organisation's inputs to posyandu: budget by source, planned
outputs, monthly realisation) and the agencies' own target figures per region, year and SPM service type
(`shared/spm`). Reporting projects them into the SPM matrix; the household service uses them to know which agency
owns a programme's beneficiary list. Each event carries the aggregate's whole state after the change and its
`version`, so consumers upsert (a stale version changes nothing). Amounts are whole rupiah. No personal data.
"""

from __future__ import annotations

import uuid
from datetime import date
from enum import StrEnum

from pydantic import BaseModel, Field

from shared.events.catalogue import D, EventType, register
from shared.events.personal_data import NotPersonal
from shared.events.topics import REGISTRY_TOPIC, SpmField

#: A month as `YYYY-MM`.
MONTH_PATTERN = r"^\d{4}-(0[1-9]|1[0-2])$"


class BudgetSource(StrEnum):
    APBD_PROVINCE = "apbd-province"
    APBD_REGENCY = "apbd-regency"
    APBDES = "apbdes"  # APBDes, Dana Desa included
    ZAKAT = "zakat"  # Baznas: zakat, infak, sedekah
    CSR = "csr"
    OTHER = "other"


class ProgrammeStatus(StrEnum):
    ACTIVE = "active"
    CLOSED = "closed"
    CANCELLED = "cancelled"


class BudgetLine(BaseModel):
    source: NotPersonal[BudgetSource]
    amount: NotPersonal[int] = Field(ge=0, description="whole rupiah")


class PlannedOutput(BaseModel):
    """E.g. `rtlh-rehabilitated`, "Rumah tidak layak huni direhabilitasi", unit `rumah`, target 50."""

    code: NotPersonal[str] = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,39}$")
    name: NotPersonal[str] = Field(min_length=1, max_length=200)
    unit: NotPersonal[str] = Field(min_length=1, max_length=40)
    target: NotPersonal[int] = Field(ge=0)


class ProgrammeData(BaseModel):
    programme_id: NotPersonal[uuid.UUID]
    agency_id: NotPersonal[uuid.UUID]
    name: NotPersonal[str]
    spm_field: NotPersonal[SpmField]
    #: A code of `shared.spm.SERVICE_TYPES` of the same field.
    service_type: NotPersonal[str]
    #: Region codes (province, regency, district or village) the programme serves.
    region_codes: NotPersonal[list[str]]
    period_start: NotPersonal[date]
    period_end: NotPersonal[date]
    budget: NotPersonal[list[BudgetLine]]
    outputs: NotPersonal[list[PlannedOutput]]
    status: NotPersonal[ProgrammeStatus]
    version: NotPersonal[int]


class DeliveredOutput(BaseModel):
    code: NotPersonal[str]
    quantity: NotPersonal[int] = Field(ge=0)


class RealisationData(BaseModel):
    """What a programme delivered and spent in one month (the month's whole figures, not increments)."""

    programme_id: NotPersonal[uuid.UUID]
    agency_id: NotPersonal[uuid.UUID]
    month: NotPersonal[str] = Field(pattern=MONTH_PATTERN)
    outputs: NotPersonal[list[DeliveredOutput]]
    spent: NotPersonal[list[BudgetLine]]
    #: The version of this programme-month's realisation (1 on the first report, +1 on each correction).
    version: NotPersonal[int]


class TargetFigureData(BaseModel):
    """An agency's own target (sasaran) for a region, year and service type, beside the one the data gives."""

    agency_id: NotPersonal[uuid.UUID]
    region_code: NotPersonal[str]
    year: NotPersonal[int]
    service_type: NotPersonal[str]
    #: None withdraws the agency's figure (the computed target applies again).
    target: NotPersonal[int | None] = Field(default=None, ge=0)
    version: NotPersonal[int]


def _programme(name: str, model: type[D], summary: str) -> EventType[D]:
    """Programmes span regions: no `regioncode`; the key is the programme id (target figures: agency/region/year)."""
    return register(name, model, publisher="registry", topic=REGISTRY_TOPIC, summary=summary, regioncode="absent")


PROGRAMME_REGISTERED = _programme("posyandu.programme.registered.v1", ProgrammeData,
                                  "An agency registered a programme supporting posyandu (budget, planned outputs).")
PROGRAMME_UPDATED = _programme("posyandu.programme.updated.v1", ProgrammeData,
                               "A programme's details, budget, outputs or status changed.")
PROGRAMME_REALISED = _programme("posyandu.programme.realised.v1", RealisationData,
                                "A programme reported (or corrected) a month's delivered outputs and spending.")
TARGET_FIGURE_SET = _programme("posyandu.spm-target.set.v1", TargetFigureData,
                               "An agency set (or withdrew) its own target figure for a region, year and SPM "
                               "service type.")
