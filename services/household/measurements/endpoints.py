"""HTTP routes for child measurements."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Response

from services.household.access import ReadableHousehold
from services.household.measurements import service
from services.household.measurements.service import MeasurementCreate, MeasurementPublic
from shared.auth import PrincipalDep, Writer
from shared.clock import TodayDep
from shared.db import SessionDep
from shared.idempotency import IdempotencyKeyHeader, idempotent
from shared.responses import json_response

router = APIRouter(prefix="/api/v1/households/{household_id}/members/{member_id}/measurements",
                   tags=["measurements"])


@router.post("", status_code=201, response_model=MeasurementPublic,
             summary="Record a child's measurement (WHO z-scores, Permenkes 2/2020 classes, KMS signal)")
async def record_measurement(household_id: uuid.UUID, member_id: uuid.UUID, payload: MeasurementCreate,
                             session: SessionDep, principal: Writer, today: TodayDep,
                             idempotency_key: IdempotencyKeyHeader = None) -> Response:
    async def create() -> Response:
        return json_response(await service.record_measurement(
            session=session, principal=principal, household_id=household_id, member_id=member_id, payload=payload,
            today=today), 201)

    return await idempotent(session, key=idempotency_key, principal=principal,
                            scope=f"POST /households/{household_id}/members/{member_id}/measurements",
                            payload=payload, create=create)


@router.get("", response_model=list[MeasurementPublic], summary="A child's measurements, oldest first (audited)")
async def list_measurements(readable: ReadableHousehold, member_id: uuid.UUID, session: SessionDep,
                            principal: PrincipalDep) -> Any:
    return await service.measurements_of(session=session, principal=principal, readable=readable,
                                         member_id=member_id)
