"""The FHIR R4 view of a referral, for health integrations: a Task with the ServiceRequest it fulfils contained.

Rendered from the disclosed view (`Disclosure.referral`), so it shows a caller what the JSON view shows and never
more: the reason (`ServiceRequest.reasonCode`) and the outcome (`Task.output`) only to the two sides, the member's
NIK and name (a contained `Patient`) only to the assigned agency. Everyone else gets the member, household,
posyandu and agency as logical references by id. The lifecycle states are FHIR Task states, so `Task.status` is
the referral's status, one to one; `ServiceRequest.status` follows from it (`SERVICE_REQUEST_STATUS`).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from services.referral.referrals.lifecycle import Status
from services.referral.referrals.schemas import MemberDetails, ReferralDetail
from shared.categories import CATEGORIES, Urgency

MEDIA_TYPE = "application/fhir+json"
#: What the response says it is (FHIR R4 is FHIR version 4.0).
RESPONSE_MEDIA_TYPE = f"{MEDIA_TYPE}; fhirVersion=4.0"

ID_SYSTEM = "urn:ietf:rfc:3986"
#: The NIK as SATUSEHAT, the national health platform, identifies a patient by it.
NIK_SYSTEM = "https://fhir.kemkes.go.id/id/nik"
TASK_CODE_SYSTEM = "http://hl7.org/fhir/CodeSystem/task-code"
#: This platform's own code systems (DOMAIN.md: the SPM field codes, the referral categories, the region codes).
SPM_FIELD_SYSTEM = "urn:posyandu:spm-field"
CATEGORY_SYSTEM = "urn:posyandu:referral-category"
REGION_SYSTEM = "urn:posyandu:region-code"

#: Referral status -> FHIR Task.status: the lifecycle uses the Task states, so each maps to itself.
TASK_STATUS: dict[Status, str] = {
    Status.DRAFT: "draft", Status.REQUESTED: "requested", Status.RECEIVED: "received",
    Status.ACCEPTED: "accepted", Status.REJECTED: "rejected", Status.IN_PROGRESS: "in-progress",
    Status.COMPLETED: "completed", Status.FAILED: "failed", Status.CANCELLED: "cancelled",
}
#: Referral status -> ServiceRequest.status: the request is active while an agency may act on it, revoked when it
#: ended without being done (rejected, failed, cancelled).
SERVICE_REQUEST_STATUS: dict[Status, str] = {
    Status.DRAFT: "draft", Status.REQUESTED: "active", Status.RECEIVED: "active", Status.ACCEPTED: "active",
    Status.IN_PROGRESS: "active", Status.COMPLETED: "completed", Status.REJECTED: "revoked",
    Status.FAILED: "revoked", Status.CANCELLED: "revoked",
}
#: Urgency -> FHIR request priority (low and normal are both routine; the JSON view keeps the urgency).
PRIORITY: dict[Urgency, str] = {Urgency.LOW: "routine", Urgency.NORMAL: "routine", Urgency.HIGH: "urgent",
                                Urgency.EMERGENCY: "stat"}

#: The FHIR view in the operation's OpenAPI document, beside the JSON view (FastAPI merges the two).
OPENAPI_RESPONSES: dict[int | str, dict[str, Any]] = {200: {
    "description": "The referral: JSON by default; with `Accept: application/fhir+json` a FHIR R4 `Task` with its "
                   "`ServiceRequest` (and, for the assigned agency, the member as a `Patient`) contained; README, "
                   "\"The FHIR view\", maps each field and status",
    "content": {MEDIA_TYPE: {"schema": {
        "type": "object", "description": "A FHIR R4 Task resource (https://hl7.org/fhir/R4/task.html)",
        "required": ["resourceType", "id", "status", "intent", "contained"],
        "properties": {"resourceType": {"const": "Task"}, "id": {"type": "string"},
                       "status": {"enum": sorted(set(TASK_STATUS.values()))}, "intent": {"const": "order"},
                       "contained": {"type": "array", "items": {"type": "object"}}}}}}}}


def wants_fhir(accept: str | None) -> bool:
    """Whether an Accept header asks for FHIR: it lists `application/fhir+json` without `q=0`."""
    for media_range in (accept or "").split(","):
        media_type, *params = (part.strip().lower() for part in media_range.split(";"))
        if media_type == MEDIA_TYPE and not any(_q_is_zero(p) for p in params):
            return True
    return False


def _q_is_zero(param: str) -> bool:
    name, _, value = param.partition("=")
    if name.strip() != "q":
        return False
    try:
        return float(value) == 0
    except ValueError:
        return False


def task(view: ReferralDetail) -> dict[str, Any]:
    """The referral as a FHIR R4 Task (resource `Task`) with its ServiceRequest (and, for its agency, the
    Patient) contained."""
    subject = _subject(view)
    contained = [_service_request(view, subject)]
    if view.member_details is not None:
        contained.append(_patient(view.member_details))
    return _compact({
        "resourceType": "Task",
        "id": str(view.id),
        "meta": {"versionId": str(view.version), "lastUpdated": _time(view.updated_at)},
        "contained": contained,
        "identifier": [_identifier(view.id)],
        "basedOn": [{"reference": "#request"}],
        "status": TASK_STATUS[view.status],
        "intent": "order",
        "priority": PRIORITY[view.urgency],
        "code": {"coding": [{"system": TASK_CODE_SYSTEM, "code": "fulfill", "display": "Fulfill the focal request"}]},
        "focus": {"reference": "#request"},
        "for": subject,
        "executionPeriod": {"start": _time(view.responded_at), "end": _time(view.closed_at)},
        "authoredOn": _time(view.created_at),
        "lastModified": _time(view.updated_at),
        "requester": _organization(view.posyandu_id),
        "owner": _organization(view.agency_id) if view.agency_id else None,
        "restriction": {"period": {"end": _time(view.complete_by)}} if view.complete_by else None,
        "output": [{"type": {"text": "outcome"}, "valueString": view.outcome}] if view.outcome else None,
    })


def _service_request(view: ReferralDetail, subject: dict[str, Any]) -> dict[str, Any]:
    category = CATEGORIES.get(view.category)
    return _compact({
        "resourceType": "ServiceRequest",
        "id": "request",
        "status": SERVICE_REQUEST_STATUS[view.status],
        "intent": "order",
        "category": [{"coding": [{"system": SPM_FIELD_SYSTEM, "code": view.spm_field.value}]}],
        "priority": PRIORITY[view.urgency],
        "code": {"coding": [_compact({"system": CATEGORY_SYSTEM, "code": view.category,
                                      "display": category.label if category else None})]},
        "subject": subject,
        "authoredOn": _time(view.created_at),
        "requester": _organization(view.posyandu_id),
        "performer": [_organization(view.agency_id)] if view.agency_id else None,
        "locationCode": [{"coding": [{"system": REGION_SYSTEM, "code": view.village_code}]}],
        "reasonCode": [{"text": view.reason}] if view.reason else None,
    })


def _subject(view: ReferralDetail) -> dict[str, Any]:
    """The member (contained with NIK and name for the assigned agency, else by id), or the household as a Group."""
    if view.member_details is not None:
        return {"reference": "#member"}
    if view.member_id is not None:
        return {"type": "Patient", "identifier": _identifier(view.member_id)}
    return {"type": "Group", "identifier": _identifier(view.household_id)}


def _patient(details: MemberDetails) -> dict[str, Any]:
    identifiers = [_identifier(details.member_id)]
    if details.nik is not None:
        identifiers.append({"use": "official", "system": NIK_SYSTEM, "value": details.nik})
    return {"resourceType": "Patient", "id": "member", "identifier": identifiers, "name": [{"text": details.name}]}


def _organization(organization_id: uuid.UUID) -> dict[str, Any]:
    """A posyandu or an agency, by its id (the registry's API has its details)."""
    return {"type": "Organization", "identifier": _identifier(organization_id)}


def _identifier(value: uuid.UUID) -> dict[str, str]:
    return {"system": ID_SYSTEM, "value": f"urn:uuid:{value}"}


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _compact(resource: dict[str, Any]) -> dict[str, Any]:
    """Leaves out what is absent: FHIR allows no null and no empty object or list."""
    return {key: cleaned for key, value in resource.items() if (cleaned := _clean(value)) not in (None, {}, [])}


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return _compact(value)
    if isinstance(value, list):
        return [c for item in value if (c := _clean(item)) not in (None, {}, [])]
    return value
