"""HTTP routes for child measurements."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel

from services.household.access import readable_household
from services.household.measurements import service
from services.household.measurements.service import MeasurementCreate
from services.household.needs.service import refresh_needs
from services.household.tables import Member
from shared.audit import record_read
from shared.auth import PrincipalDep, Writer
from shared.db import SessionDep
from shared.errors import NotFound
from shared.idempotency import IdempotencyKeyHeader, idempotent
from shared.responses import json_response

router = APIRouter(prefix="/api/v1/households/{household_id}/members/{member_id}/measurements",
                   tags=["measurements"])



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


@router.post("", status_code=201, response_model=MeasurementPublic,
             summary="Record a child's measurement (WHO z-scores, Permenkes 2/2020 classes, KMS signal)")
async def record_measurement(household_id: uuid.UUID, member_id: uuid.UUID, payload: MeasurementCreate,
                             session: SessionDep, principal: Writer,
                             idempotency_key: IdempotencyKeyHeader = None) -> Response:
    async def create() -> Response:
        household, measurement = await service.record(session=session, principal=principal,
                                                      household_id=household_id, member_id=member_id,
                                                      payload=payload)
        await refresh_needs(session, household)
        return json_response(MeasurementPublic.model_validate(measurement, from_attributes=True), 201)

    return await idempotent(session, key=idempotency_key, principal=principal,
                            scope=f"POST /households/{household_id}/members/{member_id}/measurements",
                            payload=payload, create=create)


@router.get("", response_model=list[MeasurementPublic], summary="A child's measurements, oldest first (audited)")
async def list_measurements(household_id: uuid.UUID, member_id: uuid.UUID, session: SessionDep,
                            principal: PrincipalDep) -> Any:
    household, basis = await readable_household(session, principal, household_id)
    member = await session.get(Member, member_id)
    if member is None or member.household_id != household.id:
        raise NotFound(f"No member {member_id} in household {household_id}.")
    await record_read(session, principal, resource_type="measurements", resource_id=str(member_id),
                      subject_ref=str(household.id), purpose=basis.purpose)
    measurements = await service.history(session, member_id)
    return [MeasurementPublic.model_validate(m, from_attributes=True) for m in measurements]
