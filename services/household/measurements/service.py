"""Child measurements: WHO z-scores and classes (growth/), the KMS signal, and the growth input of the need rules."""

from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from services.household.access import writable_household
from services.household.dates import PastDate, age_in_months
from services.household.growth import GrowthResult, assess, kms_signal, two_consecutive_t
from services.household.needs.rules import GrowthSnapshot
from services.household.tables import Household, Measurement, Member
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


async def history(session: AsyncSession, member_id: uuid.UUID) -> list[Measurement]:
    """A member's measurements, oldest first."""
    return list((await session.execute(select(Measurement).where(Measurement.member_id == member_id).order_by(
        col(Measurement.measured_on), col(Measurement.recorded_at)))).scalars().all())


async def growth_snapshots(session: AsyncSession, household_id: uuid.UUID) -> dict[uuid.UUID, GrowthSnapshot]:
    """Per child, the latest measurement's z-scores and whether the last two weighings were T (2T)."""
    rows = (await session.execute(select(Measurement).where(Measurement.household_id == household_id).order_by(
        col(Measurement.member_id), col(Measurement.measured_on), col(Measurement.recorded_at)))).scalars().all()
    by_member: dict[uuid.UUID, list[Measurement]] = {}
    for row in rows:
        by_member.setdefault(row.member_id, []).append(row)
    snapshots = {}
    for member_id, measurements in by_member.items():
        latest = measurements[-1]
        signals = [m.kms_signal for m in measurements if m.kms_signal is not None]
        snapshots[member_id] = GrowthSnapshot(measured_on=latest.measured_on, waz=latest.waz, haz=latest.haz,
                                              whz=latest.whz, muac_cm=latest.muac_cm,
                                              two_t=two_consecutive_t(signals))
    return snapshots
