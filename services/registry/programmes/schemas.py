"""Programme, realisation and history payloads: Create/Update/Write validate input, Public is what the API returns."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.json_schema import SkipJsonSchema

from shared.events.programmes import MONTH_PATTERN, BudgetSource, ProgrammeStatus
from shared.events.topics import SpmField
from shared.iso_dates import iso_or_none
from shared.region_codes import REGION_PREFIX_PATTERN

#: Rp 100 trillion: above any one programme (the largest provincial APBD is below it); a typo of many zeros is
#: refused rather than summed into the matrix.
MAX_RUPIAH = 100_000_000_000_000
#: Outputs counted in units (houses, packages, people): a quantity past this is a typo.
MAX_QUANTITY = 1_000_000_000
FIRST_DATE, LAST_DATE = date(2000, 1, 1), date(2100, 12, 31)

Rupiah = Annotated[int, Field(ge=0, le=MAX_RUPIAH, description="Whole rupiah")]
Quantity = Annotated[int, Field(ge=0, le=MAX_QUANTITY)]
OutputCode = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,39}$", description="e.g. `rtlh-rehabilitated`")]
Period = Annotated[date, iso_or_none, Field(ge=FIRST_DATE, le=LAST_DATE)]
RegionCodes = Annotated[list[Annotated[str, Field(pattern=REGION_PREFIX_PATTERN)]],
                        Field(min_length=1, max_length=100,
                              description="Province, regency/city, district or village codes it serves")]
Month = Annotated[str, Field(pattern=MONTH_PATTERN, description="YYYY-MM")]


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class BudgetLineIn(_Input):
    source: BudgetSource
    amount: Rupiah


class PlannedOutputIn(_Input):
    code: OutputCode
    name: str = Field(min_length=1, max_length=200)
    unit: str = Field(min_length=1, max_length=40, description="e.g. `rumah`, `paket`, `orang`")
    target: Quantity


Budget = Annotated[list[BudgetLineIn], Field(max_length=len(BudgetSource), description="One line per source")]
Outputs = Annotated[list[PlannedOutputIn], Field(min_length=1, max_length=50)]


class ProgrammeCreate(_Input):
    #: An admin names the agency; an agency's own token names none (or its own).
    agency_id: uuid.UUID | None = Field(default=None, description="Required for an admin; an agency's own id else")
    name: str = Field(min_length=2, max_length=200)
    spm_field: SpmField
    service_type: str = Field(min_length=1, max_length=80, description="A code of GET /api/v1/spm/service-types")
    region_codes: RegionCodes
    period_start: Period
    period_end: Period
    budget: Budget
    outputs: Outputs
    status: ProgrammeStatus = ProgrammeStatus.ACTIVE


class ProgrammeUpdate(_Input):
    """Omit a field to keep it; the whole programme after the change is validated as a new one would be."""

    name: str | SkipJsonSchema[None] = Field(default=None, min_length=2, max_length=200)
    spm_field: SpmField | SkipJsonSchema[None] = None
    service_type: str | SkipJsonSchema[None] = Field(default=None, min_length=1, max_length=80)
    region_codes: RegionCodes | SkipJsonSchema[None] = None
    period_start: Period | SkipJsonSchema[None] = None
    period_end: Period | SkipJsonSchema[None] = None
    budget: Budget | SkipJsonSchema[None] = None
    outputs: Outputs | SkipJsonSchema[None] = None
    status: ProgrammeStatus | SkipJsonSchema[None] = None

    @field_validator("*", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("omit the field to keep it; it cannot be null")
        return value


class BudgetLine(BaseModel):
    source: BudgetSource
    amount: int


class PlannedOutput(BaseModel):
    code: str
    name: str
    unit: str
    target: int


class ProgrammePublic(BaseModel):
    id: uuid.UUID
    agency_id: uuid.UUID
    name: str
    spm_field: SpmField
    service_type: str
    region_codes: list[str]
    period_start: date
    period_end: date
    budget: list[BudgetLine]
    outputs: list[PlannedOutput]
    status: ProgrammeStatus
    version: int
    created_by: str
    created_at: datetime
    updated_at: datetime


class DeliveredOutputIn(_Input):
    code: OutputCode
    quantity: Quantity


class RealisationWrite(_Input):
    """The month's whole figures (not increments): what was delivered and spent in that month."""

    outputs: list[DeliveredOutputIn] = Field(default_factory=list, max_length=50)
    spent: list[BudgetLineIn] = Field(default_factory=list, max_length=len(BudgetSource))


class DeliveredOutput(BaseModel):
    code: str
    quantity: int


class RealisationPublic(BaseModel):
    programme_id: uuid.UUID
    month: str
    outputs: list[DeliveredOutput]
    spent: list[BudgetLine]
    version: int
    reported_by: str
    updated_at: datetime


class OutputProgress(BaseModel):
    code: str
    target: int
    delivered: int


class BudgetProgress(BaseModel):
    source: BudgetSource
    planned: int
    spent: int
    #: Spending past the plan is accepted (budgets are revised during the year) and shown here.
    over_budget: bool


class Realisations(BaseModel):
    """A programme's months in order, with the totals to date against its plan."""

    programme_id: uuid.UUID
    items: list[RealisationPublic]
    outputs: list[OutputProgress]
    budget: list[BudgetProgress]


class ProgrammeChangePublic(BaseModel):
    action: str = Field(description="`registered`, `updated` or `realised`")
    month: str | None = Field(description="The month, for `realised`")
    version: int = Field(description="The programme's version, or the month's for `realised`")
    actor: str
    at: datetime
    state: dict[str, Any] = Field(description="The programme (or the month's realisation) after the change")
