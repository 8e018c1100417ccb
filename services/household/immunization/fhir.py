"""FHIR R4 for the health system (SATUSEHAT, ASIK): a child's doses as `Immunization` and growth measurements as
`Observation` resources in a `Bundle`, and the models that read such a bundle back (only the elements used).

Identifiers: every exported resource carries this platform's id as `urn:ietf:rfc:3986` / `urn:uuid:<id>` (as the
referral's FHIR view does); an observation, one per measured value, the name-based UUID of its measurement and
LOINC code. The patient is the member: a `Patient` entry with the member's id and, for a reader who may see it,
the NIK under SATUSEHAT's system. Vaccines are coded with this platform's codes and, where the schedule names one,
the CDC CVX code; measurements with LOINC and UCUM.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from services.household.immunization.schedule import Schedule
from services.household.immunization.tables import Dose
from services.household.tables import Measurement, Member

MEDIA_TYPE = "application/fhir+json"
RESPONSE_MEDIA_TYPE = f"{MEDIA_TYPE}; fhirVersion=4.0"
ID_SYSTEM = "urn:ietf:rfc:3986"
#: The NIK as SATUSEHAT, the national health platform, identifies a patient by it.
NIK_SYSTEM = "https://fhir.kemkes.go.id/id/nik"
VACCINE_SYSTEM = "urn:posyandu:vaccine"
CVX_SYSTEM = "http://hl7.org/fhir/sid/cvx"
LOINC_SYSTEM = "http://loinc.org"
UCUM_SYSTEM = "http://unitsofmeasure.org"
ORIGIN_SYSTEM = "http://terminology.hl7.org/CodeSystem/immunization-origin"
CATEGORY_SYSTEM = "http://terminology.hl7.org/CodeSystem/observation-category"
#: Where a dose was given, as `Immunization.location.display` (FHIR has no coded element for it).
PLACE_DISPLAY = "posyandu-place:"

#: The measured values, by LOINC code: (measurement attribute, UCUM unit, display).
WEIGHT, HEIGHT, LENGTH, HEAD, MUAC = "29463-7", "8302-2", "8306-3", "9843-4", "56072-2"
LOINC: dict[str, tuple[str, str, str]] = {
    WEIGHT: ("weight_kg", "kg", "Body weight"),
    HEIGHT: ("length_height_cm", "cm", "Body height"),
    LENGTH: ("length_height_cm", "cm", "Body height --lying"),
    HEAD: ("head_circumference_cm", "cm", "Head Occipital-frontal circumference"),
    MUAC: ("muac_cm", "cm", "Circumference Mid upper arm"),
}
#: Units an imported quantity may have, with the factor to the unit stored.
UNIT_FACTORS: dict[str, dict[str, float]] = {"kg": {"kg": 1.0, "g": 0.001}, "cm": {"cm": 1.0, "mm": 0.1, "m": 100.0}}


def _uuid_identifier(value: uuid.UUID) -> dict[str, str]:
    return {"system": ID_SYSTEM, "value": f"urn:uuid:{value}"}


def observation_id(measurement_id: uuid.UUID, loinc: str) -> uuid.UUID:
    """The stable id of one measured value's Observation."""
    return uuid.uuid5(measurement_id, loinc)


def patient(member: Member, *, with_nik: bool) -> dict[str, Any]:
    identifiers = [_uuid_identifier(member.id)]
    if with_nik and member.nik:
        identifiers.append({"use": "official", "system": NIK_SYSTEM, "value": member.nik})
    return {"resourceType": "Patient", "id": str(member.id), "identifier": identifiers,
            "gender": member.sex, "birthDate": member.birth_date.isoformat()}


def immunization(dose: Dose, schedule: Schedule, patient_ref: str) -> dict[str, Any]:
    row = schedule.vaccines.get(dose.vaccine)
    coding = [{"system": VACCINE_SYSTEM, "code": dose.vaccine, **({"display": row.name} if row else {})}]
    if row is not None and row.cvx:
        coding.append({"system": CVX_SYSTEM, "code": row.cvx})
    resource: dict[str, Any] = {
        "resourceType": "Immunization", "id": str(dose.id), "identifier": [_uuid_identifier(dose.id)],
        "status": "completed" if dose.status == "active" else "entered-in-error",
        "vaccineCode": {"coding": coding, "text": row.name if row else dose.vaccine},
        "patient": {"reference": patient_ref}, "occurrenceDateTime": dose.given_on.isoformat(),
        "recorded": dose.recorded_at.isoformat(), "primarySource": dose.place != "parent-report",
        "location": {"display": f"{PLACE_DISPLAY}{dose.place}"},
        "protocolApplied": [{"doseNumberPositiveInt": dose.dose_number}],
    }
    if dose.place == "parent-report":
        resource["reportOrigin"] = {"coding": [{"system": ORIGIN_SYSTEM, "code": "recall",
                                                "display": "Parent/Guardian/Patient Recall"}]}
    if dose.lot_number:
        resource["lotNumber"] = dose.lot_number
    return resource


def observations(measurement: Measurement, patient_ref: str) -> list[dict[str, Any]]:
    """One vital-signs Observation per value the measurement holds."""
    found = []
    for code, (attribute, unit, display) in LOINC.items():
        value = getattr(measurement, attribute)
        if code in (HEIGHT, LENGTH) and (code == LENGTH) != bool(measurement.measured_lying):
            continue  # a length is lying (8306-3) or standing (8302-2), not both
        if value is None:
            continue
        found.append({
            "resourceType": "Observation", "id": str(observation_id(measurement.id, code)),
            "identifier": [_uuid_identifier(observation_id(measurement.id, code))], "status": "final",
            "category": [{"coding": [{"system": CATEGORY_SYSTEM, "code": "vital-signs", "display": "Vital Signs"}]}],
            "code": {"coding": [{"system": LOINC_SYSTEM, "code": code, "display": display}], "text": display},
            "subject": {"reference": patient_ref}, "effectiveDateTime": measurement.measured_on.isoformat(),
            "valueQuantity": {"value": value, "unit": unit, "system": UCUM_SYSTEM, "code": unit}})
    return found


def bundle(member: Member, doses: list[Dose], measurements: list[Measurement], schedule: Schedule, *,
           with_nik: bool) -> dict[str, Any]:
    """The member's doses and measurements as a FHIR R4 `collection` Bundle, the Patient first."""
    patient_ref = f"urn:uuid:{member.id}"
    resources = [immunization(d, schedule, patient_ref) for d in doses]
    resources += [o for m in measurements for o in observations(m, patient_ref)]
    entries = [{"fullUrl": patient_ref, "resource": patient(member, with_nik=with_nik)}]
    entries += [{"fullUrl": f"urn:uuid:{r['id']}", "resource": r} for r in resources]
    return {"resourceType": "Bundle", "type": "collection", "total": len(entries), "entry": entries}


# --- reading a bundle ---------------------------------------------------------------------------------------------

Text = Annotated[str, Field(min_length=1, max_length=200)]


class _Element(BaseModel):
    """FHIR elements as read here: the elements used are checked, others are ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class Identifier(_Element):
    system: Text
    value: Text


class Coding(_Element):
    system: Text | None = None
    code: Text | None = None


class CodeableConcept(_Element):
    coding: list[Coding] = Field(default_factory=list, max_length=20)

    def code(self, system: str) -> str | None:
        return next((c.code for c in self.coding if c.system == system and c.code), None)


class Reference(_Element):
    reference: Text | None = None
    identifier: Identifier | None = None


class PatientIn(_Element):
    resourceType: Literal["Patient"]
    identifier: list[Identifier] = Field(default_factory=list, max_length=20)


def _date_part(value: Any) -> Any:
    """A dateTime's day (the time, if any, is dropped: doses and measurements are recorded by their date)."""
    return value[:10] if isinstance(value, str) and len(value) > 10 else value


class ProtocolApplied(_Element):
    doseNumberPositiveInt: int = Field(ge=1, le=10)


class ImmunizationIn(_Element):
    resourceType: Literal["Immunization"]
    identifier: list[Identifier] = Field(default_factory=list, max_length=20)
    status: Literal["completed", "entered-in-error", "not-done"]
    vaccineCode: CodeableConcept
    patient: Reference
    occurrenceDateTime: date
    primarySource: bool | None = None
    location: dict[str, Any] | None = None
    lotNumber: Annotated[str, Field(min_length=1, max_length=40)] | None = None
    protocolApplied: list[ProtocolApplied] = Field(min_length=1, max_length=1)

    _day = field_validator("occurrenceDateTime", mode="before")(_date_part)

    @property
    def place(self) -> str:
        display = str((self.location or {}).get("display", ""))
        if display.startswith(PLACE_DISPLAY):
            return display.removeprefix(PLACE_DISPLAY)
        # From the health system: given at the puskesmas (or its network) unless the parent recalled it.
        return "parent-report" if self.primarySource is False else "puskesmas"


class Quantity(_Element):
    value: float = Field(allow_inf_nan=False)
    code: Text | None = None
    unit: Text | None = None


class ObservationIn(_Element):
    resourceType: Literal["Observation"]
    identifier: list[Identifier] = Field(default_factory=list, max_length=20)
    status: Literal["registered", "preliminary", "final", "amended", "corrected", "cancelled", "entered-in-error",
                    "unknown"]
    code: CodeableConcept
    subject: Reference
    effectiveDateTime: date
    valueQuantity: Quantity

    _day = field_validator("effectiveDateTime", mode="before")(_date_part)


class EntryIn(_Element):
    fullUrl: Text | None = None
    resource: dict[str, Any]


class BundleIn(_Element):
    """A FHIR Bundle of Patient, Immunization and Observation resources (any other type is reported, skipped)."""

    resourceType: Literal["Bundle"]
    type: Literal["collection", "batch", "transaction", "message", "document", "searchset"]
    entry: list[EntryIn] = Field(default_factory=list, max_length=1000)


RESOURCE_MODELS: dict[str, type[_Element]] = {"Patient": PatientIn, "Immunization": ImmunizationIn,
                                              "Observation": ObservationIn}
