"""HTTP routes for the immunisation schedule, a child's doses and their computed status."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Response
from pydantic import BaseModel

from services.household.immunization import exchange, fhir, repository, service
from services.household.immunization.fhir import BundleIn
from services.household.immunization.schedule import ScheduleRow, ScheduleVersionIn
from services.household.immunization.service import DoseCreate, DoseVoid
from services.household.immunization.status import ImmunizationStatus
from shared.auth import Admin, PrincipalDep, Writer
from shared.clock import TodayDep
from shared.db import SessionDep
from shared.idempotency import IdempotencyKeyHeader, idempotent
from shared.iso_dates import iso_or_none
from shared.responses import json_response

schedule_router = APIRouter(prefix="/api/v1/immunization/schedule", tags=["immunisation"])
fhir_router = APIRouter(tags=["immunisation"])
router = APIRouter(prefix="/api/v1/households/{household_id}/members/{member_id}/immunizations",
                   tags=["immunisation"])



class ScheduleVersionPublic(BaseModel):
    version: str
    valid_from: date
    source: str | None
    rows: list[ScheduleRow]
    created_by: str
    created_at: datetime


class DosePublic(BaseModel):
    id: uuid.UUID
    member_id: uuid.UUID
    vaccine: str
    dose_number: int
    given_on: date
    place: str
    lot_number: str | None
    status: str
    void_reason: str | None
    voided_at: datetime | None
    recorded_by: str
    recorded_at: datetime


class PendingDosePublic(BaseModel):
    vaccine: str
    dose: int
    due_on: date
    overdue_on: date
    latest_on: date | None


class StatusPublic(BaseModel):
    member_id: uuid.UUID
    on: date
    status: str
    complete_for_age: bool
    schedule_version: str | None
    due: list[PendingDosePublic]
    overdue: list[PendingDosePublic]
    missed: list[PendingDosePublic]


def _schedule_public(record: Any) -> ScheduleVersionPublic:
    return ScheduleVersionPublic(version=record.version, valid_from=record.valid_from, source=record.source,
                                 rows=[ScheduleRow.model_validate(r) for r in record.rows],
                                 created_by=record.created_by, created_at=record.created_at)


def status_public(member_id: uuid.UUID, on: date, computed: ImmunizationStatus) -> StatusPublic:
    def pending(doses: Any) -> list[PendingDosePublic]:
        return [PendingDosePublic(vaccine=d.vaccine, dose=d.dose, due_on=d.due_on, overdue_on=d.overdue_on,
                                  latest_on=d.latest_on) for d in doses]

    return StatusPublic(member_id=member_id, on=on, status=computed.status, complete_for_age=computed.complete_for_age,
                        schedule_version=computed.schedule_version, due=pending(computed.due),
                        overdue=pending(computed.overdue), missed=pending(computed.missed))


@schedule_router.get("", response_model=list[ScheduleVersionPublic],
                     summary="Every version of the national immunisation schedule, oldest first")
async def list_schedule_versions(session: SessionDep, principal: PrincipalDep) -> Any:
    return [_schedule_public(r) for r in await repository.schedule_records(session)]


@schedule_router.post("", status_code=201, response_model=ScheduleVersionPublic,
                      summary="Add a national schedule version, in force from its valid_from (admin)")
async def add_schedule_version(payload: ScheduleVersionIn, session: SessionDep, principal: Admin,
                               today: TodayDep) -> Response:
    record = await service.add_schedule_version(session=session, principal=principal, payload=payload, today=today)
    return json_response(_schedule_public(record), 201)


@router.post("", status_code=201, response_model=DosePublic,
             summary="Record a vaccine dose a child was given (checked against the schedule)")
async def record_dose(household_id: uuid.UUID, member_id: uuid.UUID, payload: DoseCreate, session: SessionDep,
                      principal: Writer, today: TodayDep, idempotency_key: IdempotencyKeyHeader = None) -> Response:
    async def create() -> Response:
        dose = await service.record_dose(session=session, principal=principal, household_id=household_id,
                                         member_id=member_id, payload=payload, today=today)
        return json_response(DosePublic.model_validate(dose, from_attributes=True), 201)

    return await idempotent(session, key=idempotency_key, principal=principal,
                            scope=f"POST /households/{household_id}/members/{member_id}/immunizations",
                            payload=payload, create=create)


@router.get("", response_model=list[DosePublic], summary="A child's dose records, voided ones too (audited)")
async def list_doses(household_id: uuid.UUID, member_id: uuid.UUID, session: SessionDep,
                     principal: PrincipalDep) -> Any:
    doses = await service.dose_records(session=session, principal=principal, household_id=household_id,
                                       member_id=member_id)
    return [DosePublic.model_validate(d, from_attributes=True) for d in doses]


@router.get("/status", response_model=StatusPublic,
            summary="The child's computed status: complete for age, due, overdue and missed doses (audited)")
async def get_status(household_id: uuid.UUID, member_id: uuid.UUID, session: SessionDep, principal: PrincipalDep,
                     today: TodayDep,
                     on: Annotated[date | None, iso_or_none, Query(
                         description="The day (default today; a future day shows what will be due then)")] = None,
                     ) -> Any:
    day = on or today
    return status_public(member_id, day, await service.read_status(session=session, principal=principal,
                                                                    household_id=household_id, member_id=member_id,
                                                                    on=day))


@router.post("/{dose_id}/void", response_model=DosePublic,
             summary="Void a dose recorded by mistake (the record stays, marked voided)")
async def void_dose(household_id: uuid.UUID, member_id: uuid.UUID, dose_id: uuid.UUID, payload: DoseVoid,
                    session: SessionDep, principal: Writer, today: TodayDep) -> Any:
    dose = await service.void_dose(session=session, principal=principal, household_id=household_id,
                                   member_id=member_id, dose_id=dose_id, payload=payload, today=today)
    return DosePublic.model_validate(dose, from_attributes=True)


#: The export in the OpenAPI document: a FHIR R4 Bundle.
FHIR_BUNDLE_RESPONSE: dict[int | str, dict[str, Any]] = {200: {
    "description": "A FHIR R4 `collection` Bundle: the member as a `Patient` (the NIK only for a reader who may "
                   "see it), each dose as an `Immunization`, each measured value as an `Observation` (LOINC, UCUM)",
    "content": {fhir.MEDIA_TYPE: {"schema": {
        "type": "object", "description": "A FHIR R4 Bundle resource (https://hl7.org/fhir/R4/bundle.html)",
        "required": ["resourceType", "type", "entry"],
        "properties": {"resourceType": {"const": "Bundle"}, "type": {"const": "collection"},
                       "entry": {"type": "array", "items": {"type": "object"}}}}}}}}


@fhir_router.get("/api/v1/households/{household_id}/members/{member_id}/fhir", response_class=Response,
                 responses=FHIR_BUNDLE_RESPONSE,
                 summary="The member's doses and growth measurements as a FHIR R4 Bundle (audited)")
async def export_fhir(household_id: uuid.UUID, member_id: uuid.UUID, session: SessionDep,
                      principal: PrincipalDep) -> Response:
    body = await exchange.export_member(session=session, principal=principal, household_id=household_id,
                                        member_id=member_id)
    return Response(orjson.dumps(body), media_type=fhir.RESPONSE_MEDIA_TYPE)


@fhir_router.post("/api/v1/fhir/import", response_model=exchange.ImportReport,
                  summary="Import a FHIR R4 Bundle of Immunization and Observation resources, matched by NIK")
async def import_fhir(bundle: BundleIn, session: SessionDep, principal: Writer, today: TodayDep) -> Any:
    return await exchange.import_bundle(session=session, principal=principal, bundle=bundle, today=today)
