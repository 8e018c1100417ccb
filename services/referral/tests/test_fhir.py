"""The FHIR R4 view of a referral (`Accept: application/fhir+json`): a Task with its ServiceRequest contained,
checked with the `fhir.resources` models (R4B: the package's maintained releases have no R4 models for pydantic 2;
Task, ServiceRequest and Patient as used here are the same in R4 and R4B) and, for the codes those models do not
check, against the R4 value sets. Same access, field rules and audit as the JSON view.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import pytest
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.servicerequest import ServiceRequest
from fhir.resources.R4B.task import Task

from services.referral.referrals import fhir
from services.referral.referrals.lifecycle import Status
from services.referral.referrals.schemas import MemberDetails, ReferralDetail
from services.referral.tests.factories import (
    TEBET_TIMUR,
    create_referral,
    known_agency,
    known_household,
    known_posyandu,
)
from tests.support import tokens
from tests.support.waiting import eventually

FHIR = {"Accept": "application/fhir+json"}
# The R4 (4.0.1) value sets of the coded elements the view fills in.
R4_TASK_STATUS = {"draft", "requested", "received", "accepted", "rejected", "ready", "cancelled", "in-progress",
                  "on-hold", "failed", "completed", "entered-in-error"}
R4_REQUEST_STATUS = {"draft", "active", "on-hold", "revoked", "completed", "entered-in-error", "unknown"}
R4_REQUEST_PRIORITY = {"routine", "urgent", "asap", "stat"}
#: Referral status -> (Task.status, ServiceRequest.status), as README's table states it.
EXPECTED = {
    Status.DRAFT: ("draft", "draft"), Status.REQUESTED: ("requested", "active"),
    Status.RECEIVED: ("received", "active"), Status.ACCEPTED: ("accepted", "active"),
    Status.IN_PROGRESS: ("in-progress", "active"), Status.COMPLETED: ("completed", "completed"),
    Status.REJECTED: ("rejected", "revoked"), Status.FAILED: ("failed", "revoked"),
    Status.CANCELLED: ("cancelled", "revoked"),
}


def parsed(body: dict[str, Any]) -> tuple[Task, ServiceRequest, Patient | None]:
    """The body as FHIR models (raises when it is not a valid Task), with its contained resources by type."""
    task = Task.model_validate(body)
    assert task.intent == "order" and task.status in R4_TASK_STATUS and task.priority in R4_REQUEST_PRIORITY
    by_type = {resource.get_resource_type(): resource for resource in task.contained or []}
    request = by_type["ServiceRequest"]
    assert isinstance(request, ServiceRequest) and request.intent == "order"
    assert request.status in R4_REQUEST_STATUS and request.priority in R4_REQUEST_PRIORITY
    # Every contained resource is referenced from the Task (FHIR's dom-3).
    assert task.focus is not None and task.focus.reference == f"#{request.id}"
    patient = by_type.get("Patient")
    if patient is not None:
        assert isinstance(patient, Patient) and task.for_fhir is not None
        assert task.for_fhir.reference == f"#{patient.id}"
    return task, request, patient if isinstance(patient, Patient) else None


def _view(status: Status, **overrides: Any) -> ReferralDetail:
    now = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    values: dict[str, Any] = {
        "id": uuid.uuid4(), "need_id": None, "household_id": uuid.uuid4(), "member_id": uuid.uuid4(),
        "member_nik_masked": "317401******0001", "posyandu_id": uuid.uuid4(), "village_code": TEBET_TIMUR,
        "spm_field": "kesehatan", "category": "kesehatan.tb-suspect", "urgency": "high", "origin": "manual",
        "status": status, "agency_id": uuid.uuid4(), "unrouted": False, "reason": "Batuk dua minggu",
        "outcome": None, "evidence": None, "respond_by": now, "complete_by": now, "responded_at": None,
        "closed_at": None, "overdue": False, "overdue_at": None, "escalated_at": None,
        "escalated_to_agency_id": None, "need_resolved_at": None, "version": 1, "created_by": "kader",
        "created_at": now, "updated_at": now}
    return ReferralDetail.model_validate({**values, **overrides})


@pytest.mark.parametrize("status", list(Status))
def test_each_lifecycle_status_maps_to_its_task_status(status: Status) -> None:
    assert set(EXPECTED) == set(Status)
    task, request, _ = parsed(fhir.task(_view(status)))
    assert (task.status, request.status) == EXPECTED[status]


def test_a_household_level_unrouted_referral_is_a_valid_task_for_a_group() -> None:
    task, request, patient = parsed(fhir.task(_view(Status.REQUESTED, member_id=None, agency_id=None,
                                                    unrouted=True, urgency="low", complete_by=None)))
    assert patient is None and task.owner is None and request.performer is None and task.restriction is None
    assert task.for_fhir is not None and task.for_fhir.type == "Group" and task.priority == "routine"


@pytest.mark.parametrize(("accept", "fhir_wanted"), [
    (None, False), ("application/json", False), ("*/*", False), ("application/fhir+json", True),
    ("application/json, application/fhir+json; fhirVersion=4.0", True), ("Application/FHIR+JSON;q=0.5", True),
    ("application/fhir+json;q=0, application/json", False), ("application/fhir+json;q=zero", True),
])
def test_the_accept_header_chooses_the_view(accept: str | None, fhir_wanted: bool) -> None:
    assert fhir.wants_fhir(accept) is fhir_wanted


async def test_the_fhir_view_follows_the_lifecycle_with_the_json_views_access_field_rules_and_audit(
        registry: httpx.AsyncClient, household: httpx.AsyncClient, referral: httpx.AsyncClient,
        household_db: asyncpg.Connection, referral_db: asyncpg.Connection) -> None:
    await known_agency(registry, referral_db, "3174", ["kesehatan"])
    place = await known_posyandu(registry, household_db, TEBET_TIMUR)
    created = await known_household(household, referral_db, place, TEBET_TIMUR)
    head = created["members"][0]
    made = await create_referral(referral, created, spm_field="kesehatan", category="kesehatan.tb-suspect")
    url = f"/api/v1/referrals/{made['id']}"
    agency = tokens.opd(made["agency_id"], ["kesehatan"])

    async def household_knows_the_referral() -> bool:
        return bool(await household_db.fetchval("SELECT count(*) FROM agency_access WHERE referral_id = $1 AND open",
                                                uuid.UUID(made["id"])))

    await eventually(household_knows_the_referral, "the household service to learn the referral")

    # The assigned agency: the Task, the request with its reason, the member with NIK and name.
    response = await referral.get(url, headers=agency | FHIR)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/fhir+json; fhirVersion=4.0"
    assert response.headers["etag"] == (await referral.get(url, headers=agency)).headers["etag"]
    task, request, patient = parsed(response.json())
    assert task.id == made["id"] and task.status == "requested" and task.priority == "urgent"
    assert request.reasonCode is not None and request.reasonCode[0].text == made["reason"]
    assert request.code is not None and request.code.coding is not None
    assert request.code.coding[0].code == "kesehatan.tb-suspect"
    assert task.owner is not None and task.owner.identifier is not None
    assert task.owner.identifier.value == f"urn:uuid:{made['agency_id']}"
    assert patient is not None and patient.name is not None and patient.name[0].text == head["name"]
    assert {(i.system, i.value) for i in patient.identifier or []} == {
        (fhir.ID_SYSTEM, f"urn:uuid:{head['id']}"), (fhir.NIK_SYSTEM, head["nik"])}

    # Audited as the JSON read is: the same fields disclosed, the same purpose.
    audit = await referral_db.fetch("SELECT fields, purpose FROM audit_log WHERE resource_id = $1 ORDER BY id",
                                    made["id"])
    assert len(audit) == 2 and audit[0]["fields"] == audit[1]["fields"] and audit[0]["purpose"] == audit[1]["purpose"]
    assert "member_details" in audit[0]["fields"] and "reason" in audit[0]["fields"]

    # Each step of the lifecycle is the Task's status; the outcome is the Task's output.
    for action, body, status in (("receive", None, "received"), ("accept", None, "accepted"),
                                 ("start", None, "in-progress"),
                                 ("complete", {"outcome": "Dahak negatif"}, "completed")):
        moved = await referral.post(f"{url}/{action}", json=body, headers=agency)
        assert moved.status_code == 200, moved.text
        task, request, _ = parsed((await referral.get(url, headers=agency | FHIR)).json())
        assert (task.status, request.status) == (status, EXPECTED[Status(status)][1])
    assert task.output is not None and task.output[0].valueString == "Dahak negatif"
    assert task.executionPeriod is not None and task.executionPeriod.start and task.executionPeriod.end

    # The kader of the posyandu: the reason and outcome, no member identity.
    task, request, patient = parsed((await referral.get(url, headers=tokens.kader([place]) | FHIR)).json())
    assert patient is None and request.reasonCode is not None and task.output is not None
    assert task.for_fhir is not None and task.for_fhir.identifier is not None
    assert task.for_fhir.identifier.value == f"urn:uuid:{head['id']}"

    # A pembina of the region: the states and references, no reason, no outcome, no member identity.
    pembina = await referral.get(url, headers=tokens.pembina("3174") | FHIR)
    task, request, patient = parsed(pembina.json())
    assert request.reasonCode is None and task.output is None and patient is None and task.status == "completed"
    assert made["reason"] not in pembina.text and head["nik"] not in pembina.text and head["name"] not in pembina.text

    # An agency it is not routed to gets a 404 problem, as for JSON; the FHIR Accept does not change that.
    other = await referral.get(url, headers=tokens.opd(uuid.uuid4(), ["kesehatan"]) | FHIR)
    assert other.status_code == 404 and other.headers["content-type"] == "application/problem+json"
    missing = await referral.get(f"/api/v1/referrals/{uuid.uuid4()}", headers=agency | FHIR)
    assert missing.status_code == 404

    # JSON stays the default, and an Accept that refuses FHIR gets JSON.
    for accept in ({}, {"Accept": "application/fhir+json;q=0, application/json"}):
        plain = await referral.get(url, headers=agency | accept)
        assert plain.headers["content-type"] == "application/json" and plain.json()["status"] == "completed"


async def test_a_cancelled_referral_is_a_cancelled_task_with_a_revoked_request(
        registry: httpx.AsyncClient, household: httpx.AsyncClient, referral: httpx.AsyncClient,
        household_db: asyncpg.Connection, referral_db: asyncpg.Connection) -> None:
    place = await known_posyandu(registry, household_db, TEBET_TIMUR)
    created = await known_household(household, referral_db, place, TEBET_TIMUR)
    made = await create_referral(referral, created, spm_field="kesehatan", category="kesehatan.hypertension",
                                 member=False)
    kader = tokens.kader([place])
    cancelled = await referral.post(f"/api/v1/referrals/{made['id']}/cancel", json={"reason": "Pindah"},
                                    headers=kader)
    assert cancelled.status_code == 200, cancelled.text
    read = await referral.get(f"/api/v1/referrals/{made['id']}", headers=kader | FHIR)
    task, request, patient = parsed(read.json())
    assert (task.status, request.status) == ("cancelled", "revoked") and patient is None
    assert task.for_fhir is not None and task.for_fhir.type == "Group"


def test_member_details_without_a_nik_give_a_patient_with_the_member_id_only() -> None:
    member = MemberDetails(member_id=uuid.uuid4(), nik=None, name="Siti")
    _, _, patient = parsed(fhir.task(_view(Status.ACCEPTED, member_details=member)))
    assert patient is not None and [i.system for i in patient.identifier or []] == [fhir.ID_SYSTEM]
