"""HTTP routes for per-field profiles and detected needs."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Response
from pydantic import BaseModel, ValidationError

from services.household.access import ReadableHousehold
from services.household.profiles import service
from services.household.profiles.schemas import PROFILE_MODELS
from services.household.profiles.service import ProfileVersionPublic
from shared.auth import PrincipalDep, Writer
from shared.clock import TodayDep
from shared.db import SessionDep
from shared.errors import ValidationFailed
from shared.events.topics import SpmField
from shared.iso_dates import iso_or_none
from shared.responses import json_response

router = APIRouter(prefix="/api/v1/households/{household_id}", tags=["profiles and needs"])



class NeedPublic(BaseModel):
    id: uuid.UUID
    household_id: uuid.UUID
    member_id: uuid.UUID | None
    spm_field: SpmField
    category: str
    urgency: str
    evidence: dict[str, Any]
    status: str
    detected_at: datetime


#: The body's schema depends on the path's field, which OpenAPI cannot say in a schema: the body is any of the six
#: (an empty profile fits several, hence anyOf), the description says which goes with which field. The schemas
#: themselves are put into the components by the app (ServiceSpec.extra_schemas).
PROFILE_BODY = {"requestBody": {"required": True, "description": "The profile of the path's field: " + ", ".join(
    f"`{field.value}`: {model.__name__}" for field, model in PROFILE_MODELS.items()) + ".", "content": {
    "application/json": {"schema": {"title": "Profile",
                                     "anyOf": [{"$ref": f"#/components/schemas/{m.__name__}"}
                                               for m in PROFILE_MODELS.values()]}}}}}


@router.put("/profiles/{field}", response_model=ProfileVersionPublic, status_code=201,
            summary="Record a new version of the household's profile for one SPM field", openapi_extra=PROFILE_BODY)
async def put_profile(household_id: uuid.UUID, field: SpmField, session: SessionDep, principal: Writer,
                      body: Annotated[dict[str, Any], Body()], today: TodayDep,
                      observed_on: Annotated[date | None, iso_or_none,
                                            Query(description="When observed (default today)")] = None,
                      ) -> Response:
    try:
        profile = PROFILE_MODELS[field].model_validate(body)
    except ValidationError as exc:
        raise ValidationFailed(f"The {field.value} profile has invalid fields.", errors=[
            {"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"], "type": e["type"]}
            for e in exc.errors()]) from exc
    return json_response(await service.record_profile(
        session=session, principal=principal, household_id=household_id, field=field, profile=profile,
        observed_on=observed_on or today, today=today), 201)


@router.get("/profiles/{field}", response_model=ProfileVersionPublic, summary="The current profile of one field")
async def get_profile(readable: ReadableHousehold, field: SpmField, session: SessionDep,
                      principal: PrincipalDep) -> Any:
    return await service.current_version(session=session, principal=principal, readable=readable, field=field)


@router.get("/profiles/{field}/history", response_model=list[ProfileVersionPublic],
            summary="Every version of one field's profile, newest first")
async def profile_history(readable: ReadableHousehold, field: SpmField, session: SessionDep,
                          principal: PrincipalDep) -> Any:
    return await service.version_history(session=session, principal=principal, readable=readable, field=field)


@router.get("/needs", response_model=list[NeedPublic], summary="The household's open needs")
async def list_needs(readable: ReadableHousehold, session: SessionDep, principal: PrincipalDep) -> Any:
    needs = await service.needs_of(session=session, principal=principal, readable=readable)
    return [NeedPublic.model_validate(n, from_attributes=True) for n in needs]
