"""Child measurements: WHO z-scores and classes (growth/), the KMS signal; recording one as a use case."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy.ext.asyncio import AsyncSession

from services.household.access import Readable, writable_household
from services.household.dates import PastDate, age_in_months
from services.household.growth import GrowthResult, assess, kms_signal
from services.household.measurements.repository import growth_snapshots as growth_snapshots
from services.household.measurements.repository import history as history
from services.household.needs.service import refresh_needs
from services.household.tables import Household, Measurement, Member
from shared.audit import record as audit
from shared.audit import record_read
from shared.auth import Principal
from shared.errors import NotFound, ValidationFailed
from shared.events import household as ev
from shared.outbox import publish

#: The WHO standards (and the posyandu's weighing) cover children up to 60 months.
MAX_AGE_MONTHS = 60


class MeasurementValues(BaseModel):
    """What was measured (a visit's child section carries these; its date is the session's)."""

    model_config = ConfigDict(extra="forbid")

    weight_kg: float | None = Field(default=None, gt=0, le=60)
    length_height_cm: float | None = Field(default=None, gt=20, le=150)
    measured_lying: bool | None = Field(default=None, description="Length lying (true) or height standing (false)")
    head_circumference_cm: float | None = Field(default=None, gt=15, le=70)
    muac_cm: float | None = Field(default=None, gt=5, le=35)
    oedema: bool = False

    @model_validator(mode="after")
    def _something_measured(self) -> MeasurementValues:
        if all(v is None for v in (self.weight_kg, self.length_height_cm, self.head_circumference_cm, self.muac_cm)):
            raise ValueError("record at least one of weight, length/height, head circumference or MUAC")
        if self.length_height_cm is not None and self.measured_lying is None:
            raise ValueError("say whether the length/height was measured lying or standing (measured_lying)")
        return self


class MeasurementCreate(MeasurementValues):
    measured_on: PastDate


#: WHO's flags for biologically implausible z-scores (WHO Anthro): beyond them a value is an error of measurement or
#: entry (a weight for the wrong child, a length in mm), not a child's state.
IMPLAUSIBLE = {"waz": (-6.0, 5.0), "haz": (-6.0, 6.0), "whz": (-5.0, 5.0)}
#: The input an implausible index points at.
_INPUTS = {"waz": "weight_kg", "haz": "length_height_cm", "whz": "weight_kg"}


def check_plausible(result: GrowthResult) -> None:
    """422 for a measurement impossible for the child's age, sex and length (WHO's implausibility flags)."""
    errors = [{"field": _INPUTS[index], "message": f"{index.upper()} {z:+.2f} is outside WHO's plausible range "
                                                   f"{low:+.0f} to {high:+.0f}: check the value and the unit"}
              for index, (low, high) in IMPLAUSIBLE.items()
              if (z := getattr(result, index)) is not None and not low <= z <= high]
    if errors:
        raise ValidationFailed("The measurement is impossible for the child's age and sex.", errors=errors)


class MemberNotMeasurable(NotFound):
    pass


async def record(*, session: AsyncSession, principal: Principal, household_id: uuid.UUID, member_id: uuid.UUID,
                 payload: MeasurementCreate) -> tuple[Household, Measurement]:
    """Records a measurement of a child under 60 months, with z-scores, classes and the KMS signal."""
    household = await writable_household(session, principal, household_id)
    member = await session.get(Member, member_id)
    if member is None or member.household_id != household.id or member.status != "active":
        raise MemberNotMeasurable(f"No member {member_id} in household {household_id}.")
    if payload.measured_on < member.birth_date:
        raise ValidationFailed("The measurement is dated before the child's birth.",
                               errors=[{"field": "measured_on", "message": "before the birth date"}])
    if age_in_months(member.birth_date, payload.measured_on) >= MAX_AGE_MONTHS:
        raise ValidationFailed("Growth measurements are for children under 60 months.",
                               errors=[{"field": "measured_on", "message": "the member is 60 months or older"}])
    result = assess(sex=member.sex, birth_date=member.birth_date, measured_on=payload.measured_on,
                    weight_kg=payload.weight_kg, length_height_cm=payload.length_height_cm,
                    measured_lying=payload.measured_lying, muac_cm=payload.muac_cm, oedema=payload.oedema)
    check_plausible(result)
    signal = None
    if payload.weight_kg is not None:
        earlier = [(m.measured_on, m.weight_kg) for m in await history(session, member.id)
                   if m.weight_kg is not None and m.measured_on < payload.measured_on]
        signal = kms_signal([(d, w) for d, w in earlier if w is not None], (payload.measured_on, payload.weight_kg),
                            sex=member.sex, birth_date=member.birth_date)
    measurement = Measurement(
        member_id=member.id, household_id=household.id, **payload.model_dump(), age_days=result.age_days,
        waz=result.waz, haz=result.haz, whz=result.whz, baz=result.baz, waz_class=result.waz_class,
        haz_class=result.haz_class, whz_class=result.whz_class, muac_class=result.muac_class, kms_signal=signal,
        recorded_by=principal.sub)
    session.add(measurement)
    await session.flush()
    await publish(session, ev.MEASUREMENT_RECORDED, ev.MeasurementData(
        measurement_id=measurement.id, household_id=household.id, member_id=member.id,
        measured_on=measurement.measured_on, age_days=measurement.age_days, waz=measurement.waz,
        haz=measurement.haz, whz=measurement.whz, waz_class=measurement.waz_class, haz_class=measurement.haz_class,
        whz_class=measurement.whz_class, muac_class=measurement.muac_class, kms_signal=signal),
        subject=str(household.id), regioncode=household.village_code)
    return household, measurement


class MeasurementPublic(BaseModel):
    id: uuid.UUID
    member_id: uuid.UUID
    measured_on: date
    weight_kg: float | None
    length_height_cm: float | None
    measured_lying: bool | None
    head_circumference_cm: float | None
    muac_cm: float | None
    oedema: bool
    age_days: int
    waz: float | None
    haz: float | None
    whz: float | None
    baz: float | None
    waz_class: str | None
    haz_class: str | None
    whz_class: str | None
    muac_class: str | None
    kms_signal: str | None
    recorded_at: datetime


async def record_measurement(*, session: AsyncSession, principal: Principal, household_id: uuid.UUID,
                             member_id: uuid.UUID, payload: MeasurementCreate, today: date) -> MeasurementPublic:
    """POST .../measurements: the measurement with its event, the household's needs, the audit row."""
    household, measurement = await record(session=session, principal=principal, household_id=household_id,
                                          member_id=member_id, payload=payload)
    await refresh_needs(session, household, today=today)
    await audit(session, principal, action="record-measurement", resource_type="measurement",
                resource_id=str(measurement.id), subject_ref=str(household.id),
                purpose="child measured at the posyandu", fields=sorted(payload.model_fields_set))
    return MeasurementPublic.model_validate(measurement, from_attributes=True)


async def measurements_of(*, session: AsyncSession, principal: Principal, readable: Readable,
                          member_id: uuid.UUID) -> list[MeasurementPublic]:
    """GET .../measurements: a child's measurements, oldest first, the read audited."""
    member = await session.get(Member, member_id)
    if member is None or member.household_id != readable.household.id:
        raise NotFound(f"No member {member_id} in household {readable.household.id}.")
    await record_read(session, principal, resource_type="measurements", resource_id=str(member_id),
                      subject_ref=str(readable.household.id), purpose=readable.basis.purpose)
    return [MeasurementPublic.model_validate(m, from_attributes=True) for m in await history(session, member_id)]
