"""FHIR R4 exchange: a member's doses and measurements exported as a Bundle (validated with the `fhir.resources`
R4B models: Bundle, Patient, Immunization and Observation as used here are the same in R4 and R4B), and bundles
imported, matched by NIK, deduplicated by identifiers, all or nothing."""

from __future__ import annotations

import copy
import uuid
from datetime import date, timedelta
from typing import Any

import asyncpg
import httpx
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.immunization import Immunization
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient

from services.household.immunization import fhir
from services.household.immunization.schedule import add_months
from services.household.tests.immunization_support import (
    PARUGA,
    doses_url,
    family_with_baby,
    mataram_posyandu,
)
from tests.support import tokens

IMPORT = "/api/v1/fhir/import"
PUSKESMAS = "https://fhir.kemkes.go.id/id/immunization/P5271010101"


def ago(months: int, days: int = 0) -> date:
    return add_months(date.today(), -months) - timedelta(days=days)


async def give(household: httpx.AsyncClient, kader: dict[str, str], url: str, vaccine: str, number: int,
               given: date, place: str = "posyandu") -> dict[str, Any]:
    response = await household.post(url, headers=kader, json={"vaccine": vaccine, "dose_number": number,
                                                              "given_on": given.isoformat(), "place": place})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def puskesmas_dose(nik: str, vaccine_cvx: str, number: int, given: date, serial: str) -> dict[str, Any]:
    """An Immunization as the puskesmas's system would send it: its own identifier, CVX only, NIK on the patient."""
    return {"resource": {
        "resourceType": "Immunization", "identifier": [{"system": PUSKESMAS, "value": serial}],
        "status": "completed", "vaccineCode": {"coding": [{"system": fhir.CVX_SYSTEM, "code": vaccine_cvx}]},
        "patient": {"identifier": {"system": fhir.NIK_SYSTEM, "value": nik}},
        "occurrenceDateTime": f"{given.isoformat()}T09:30:00+08:00", "primarySource": True,
        "protocolApplied": [{"doseNumberPositiveInt": number}]}}


def bundle_of(*entries: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "batch", "entry": list(entries)}


async def count(db: asyncpg.Connection, table: str, member_id: str) -> int:
    value: int = await db.fetchval(f"SELECT count(*) FROM {table} WHERE member_id = $1", uuid.UUID(member_id))
    return value


async def test_export_is_a_valid_fhir_bundle(registry: httpx.AsyncClient, household: httpx.AsyncClient,
                                             household_db: asyncpg.Connection) -> None:
    posyandu = await mataram_posyandu(registry, household_db)
    kader = tokens.kader([posyandu])
    birth = ago(2, 3)
    created, baby = await family_with_baby(household, posyandu, birth)
    url = doses_url(created["id"], baby["id"])
    await give(household, kader, url, "bcg", 1, birth, "puskesmas")
    await give(household, kader, url, "opv", 1, add_months(birth, 1), "parent-report")
    measured = await household.post(f"/api/v1/households/{created['id']}/members/{baby['id']}/measurements",
                                    headers=kader, json={"measured_on": date.today().isoformat(), "weight_kg": 5.4,
                                                         "length_height_cm": 57.5, "measured_lying": True,
                                                         "head_circumference_cm": 39.0})
    assert measured.status_code == 201, measured.text

    response = await household.get(f"/api/v1/households/{created['id']}/members/{baby['id']}/fhir", headers=kader)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    body = response.json()
    parsed = Bundle.model_validate(body)
    assert parsed.type == "collection" and parsed.entry is not None and len(parsed.entry) == 1 + 2 + 3
    # Each entry is the resource it says (the models validate each against its own R4 definition) ...
    models: dict[str, Any] = {"Patient": Patient, "Immunization": Immunization, "Observation": Observation}
    resources = [e["resource"] for e in body["entry"]]
    for resource in resources:
        models[resource["resourceType"]].model_validate(resource)
    assert [r["resourceType"] for r in resources] == ["Patient", "Immunization", "Immunization", *["Observation"] * 3]
    # ... with the codes the health system reads.
    assert {"use": "official", "system": fhir.NIK_SYSTEM, "value": baby["nik"]} in resources[0]["identifier"]
    doses = resources[1:3]
    assert [(d["protocolApplied"][0]["doseNumberPositiveInt"], d["primarySource"]) for d in doses] == [
        (1, True), (1, False)]
    assert {(c["system"], c["code"]) for c in doses[0]["vaccineCode"]["coding"]} == {(fhir.VACCINE_SYSTEM, "bcg"),
                                                                                    (fhir.CVX_SYSTEM, "19")}
    assert doses[1]["reportOrigin"]["coding"][0]["code"] == "recall"
    observations = {r["code"]["coding"][0]["code"]: r for r in resources[3:]}
    assert set(observations) == {"29463-7", "8306-3", "9843-4"}  # weight, length lying, head circumference
    assert observations["29463-7"]["valueQuantity"] == {"value": 5.4, "unit": "kg", "system": fhir.UCUM_SYSTEM,
                                                        "code": "kg"}
    assert all(o["subject"]["reference"] == f"urn:uuid:{baby['id']}" and o["status"] == "final"
               and o["category"][0]["coding"][0]["code"] == "vital-signs" for o in observations.values())
    # Every reference resolves inside the bundle (the Patient's fullUrl).
    assert {d["patient"]["reference"] for d in doses} == {body["entry"][0]["fullUrl"]}

    # An administrator reads it too (audited), without the NIK.
    admin = (await household.get(f"/api/v1/households/{created['id']}/members/{baby['id']}/fhir",
                                 headers=tokens.admin())).json()
    assert fhir.NIK_SYSTEM not in {i["system"] for i in admin["entry"][0]["resource"]["identifier"]}
    assert await household_db.fetchval("SELECT count(*) FROM audit_log WHERE resource_type = 'fhir.bundle' AND "
                                       "resource_id = $1", baby["id"]) == 2


async def test_round_trip_into_another_member_and_reimport_is_idempotent(
        registry: httpx.AsyncClient, household: httpx.AsyncClient, household_db: asyncpg.Connection) -> None:
    mataram = await mataram_posyandu(registry, household_db)
    bima = await mataram_posyandu(registry, household_db, PARUGA)
    kader = tokens.kader([mataram, bima])
    birth = ago(3, 2)
    source, baby = await family_with_baby(household, mataram, birth)
    url = doses_url(source["id"], baby["id"])
    for vaccine, number, given in [("bcg", 1, birth), ("opv", 1, add_months(birth, 1)),
                                   ("opv", 2, add_months(birth, 2)), ("pcv", 1, add_months(birth, 2))]:
        await give(household, kader, url, vaccine, number, given)
    measured = await household.post(f"/api/v1/households/{source['id']}/members/{baby['id']}/measurements",
                                    headers=kader, json={"measured_on": date.today().isoformat(), "weight_kg": 6.1,
                                                         "length_height_cm": 61.0, "measured_lying": True})
    assert measured.status_code == 201, measured.text
    exported = (await household.get(f"/api/v1/households/{source['id']}/members/{baby['id']}/fhir",
                                    headers=kader)).json()

    # Re-importing the export changes nothing: every record is this platform's own.
    again = await household.post(IMPORT, json=exported, headers=kader)
    assert again.status_code == 200, again.text
    assert again.json()["counts"] == {"skipped": 1, "duplicate": 6}
    assert await count(household_db, "immunization_doses", baby["id"]) == 4
    assert await count(household_db, "measurements", baby["id"]) == 1

    # The same history for a twin in Kota Bima with the same birth date: the bundle, re-pointed to the twin's NIK.
    target, twin = await family_with_baby(household, bima, birth, village=PARUGA)
    moved = copy.deepcopy(exported)
    for identifier in moved["entry"][0]["resource"]["identifier"]:
        if identifier["system"] == fhir.NIK_SYSTEM:
            identifier["value"] = twin["nik"]
    first = await household.post(IMPORT, json=moved, headers={**kader, "Content-Type": fhir.MEDIA_TYPE})
    assert first.status_code == 200, first.text
    assert first.json()["counts"] == {"skipped": 1, "created": 6}
    assert {e["member_id"] for e in first.json()["entries"] if e["outcome"] == "created"} == {twin["id"]}
    # The weight and the length of one day became one measurement, with the twin's own z-scores.
    observed = [e for e in first.json()["entries"] if e["resource_type"] == "Observation"]
    assert len(observed) == 2 and len({e["target_id"] for e in observed}) == 1
    row = await household_db.fetchrow("SELECT weight_kg, length_height_cm, measured_lying, waz FROM measurements "
                                      "WHERE member_id = $1", uuid.UUID(twin["id"]))
    assert (row["weight_kg"], row["length_height_cm"], row["measured_lying"]) == (6.1, 61.0, True)
    assert row["waz"] is not None
    twin_doses = (await household.get(doses_url(target["id"], twin["id"]), headers=kader)).json()
    assert sorted((d["vaccine"], d["dose_number"], d["given_on"]) for d in twin_doses) == sorted(
        (v, n, g.isoformat()) for v, n, g in [("bcg", 1, birth), ("opv", 1, add_months(birth, 1)),
                                              ("opv", 2, add_months(birth, 2)), ("pcv", 1, add_months(birth, 2))])
    # ... and the same bundle a second time matches the twin's doses (vaccine, dose, date): nothing counted twice.
    second = await household.post(IMPORT, json=moved, headers=kader)
    assert second.json()["counts"] == {"skipped": 1, "matched": 6}
    assert await count(household_db, "immunization_doses", twin["id"]) == 4
    assert await count(household_db, "measurements", twin["id"]) == 1
    assert await household_db.fetchval("SELECT count(*) FROM outbox WHERE key = $1 AND event_type = "
                                       "'posyandu.immunization.recorded.v1'", target["id"]) == 4


async def test_puskesmas_doses_match_the_posyandus_and_unknown_niks_are_reported(
        registry: httpx.AsyncClient, household: httpx.AsyncClient, household_db: asyncpg.Connection) -> None:
    posyandu = await mataram_posyandu(registry, household_db)
    kader = tokens.kader([posyandu])
    birth = ago(2, 10)
    created, baby = await family_with_baby(household, posyandu, birth)
    url = doses_url(created["id"], baby["id"])
    bcg = await give(household, kader, url, "bcg", 1, birth)
    stranger = "527101" + "010125" + "9999"  # a well-formed NIK no member has
    sent = bundle_of(
        puskesmas_dose(baby["nik"], "19", 1, birth, "IMM-1"),  # BCG the posyandu recorded too: matched
        puskesmas_dose(baby["nik"], "178", 1, add_months(birth, 1), "IMM-2"),  # polio 1: new
        puskesmas_dose(stranger, "178", 1, add_months(birth, 1), "IMM-3"),  # unknown NIK
        {"resource": {"resourceType": "Observation", "identifier": [{"system": PUSKESMAS, "value": "OBS-1"}],
                      "status": "final", "code": {"coding": [{"system": fhir.LOINC_SYSTEM, "code": "29463-7"}]},
                      "subject": {"reference": "Patient/p1"}, "effectiveDateTime": date.today().isoformat(),
                      "valueQuantity": {"value": 5600, "unit": "g", "system": fhir.UCUM_SYSTEM, "code": "g"}}},
        {"resource": {"resourceType": "Patient", "id": "p1",
                      "identifier": [{"system": fhir.NIK_SYSTEM, "value": baby["nik"]}]}},
        {"resource": {"resourceType": "Condition", "id": "c1"}})
    response = await household.post(IMPORT, json=sent, headers=kader)
    assert response.status_code == 200, response.text
    entries = response.json()["entries"]
    assert [(e["entry"], e["outcome"]) for e in entries] == [
        (0, "matched"), (1, "created"), (2, "unknown-patient"), (3, "created"), (4, "skipped"), (5, "skipped")]
    assert entries[0]["target_id"] == bcg["id"]
    assert await count(household_db, "immunization_doses", baby["id"]) == 2
    weight = await household_db.fetchval("SELECT weight_kg FROM measurements WHERE member_id = $1",
                                         uuid.UUID(baby["id"]))
    assert weight == 5.6
    # The puskesmas sends it all again (its system resends whole histories): nothing new.
    replay = await household.post(IMPORT, json=sent, headers=kader)
    assert [e["outcome"] for e in replay.json()["entries"]] == [
        "duplicate", "duplicate", "unknown-patient", "duplicate", "skipped", "skipped"]
    assert await count(household_db, "immunization_doses", baby["id"]) == 2
    assert await count(household_db, "measurements", baby["id"]) == 1
    # A kader of another posyandu cannot import into this child: the NIK is unknown to them.
    other = tokens.kader([str(uuid.uuid4())])
    hidden = await household.post(IMPORT, json=bundle_of(puskesmas_dose(baby["nik"], "10", 1, add_months(birth, 2),
                                                                        "IMM-9")), headers=other)
    assert [e["outcome"] for e in hidden.json()["entries"]] == ["unknown-patient"]


async def test_an_invalid_entry_is_a_422_naming_it_and_nothing_is_imported(
        registry: httpx.AsyncClient, household: httpx.AsyncClient, household_db: asyncpg.Connection) -> None:
    posyandu = await mataram_posyandu(registry, household_db)
    kader = tokens.kader([posyandu])
    birth = ago(4)
    _, baby = await family_with_baby(household, posyandu, birth)
    good = puskesmas_dose(baby["nik"], "19", 1, birth, "BAD-1")
    no_code = copy.deepcopy(good)
    del no_code["resource"]["vaccineCode"]
    before_birth = puskesmas_dose(baby["nik"], "178", 1, birth - timedelta(days=3), "BAD-2")
    out_of_order = puskesmas_dose(baby["nik"], "198", 2, add_months(birth, 3), "BAD-3")
    too_soon = [puskesmas_dose(baby["nik"], "178", 1, add_months(birth, 1), "BAD-4"),
                puskesmas_dose(baby["nik"], "178", 2, add_months(birth, 1) + timedelta(days=5), "BAD-5")]
    bad_unit = {"resource": {"resourceType": "Observation", "status": "final",
                             "code": {"coding": [{"system": fhir.LOINC_SYSTEM, "code": "29463-7"}]},
                             "subject": {"identifier": {"system": fhir.NIK_SYSTEM, "value": baby["nik"]}},
                             "effectiveDateTime": date.today().isoformat(),
                             "valueQuantity": {"value": 12, "code": "[lb_av]"}}}
    cases = [([good, no_code], "entry.1.resource.vaccineCode"), ([good, before_birth], "entry.1.resource"),
             ([good, out_of_order], "entry.1.resource"), ([good, *too_soon], "entry.2.resource"),
             ([good, bad_unit], "entry.1.resource.valueQuantity.code")]
    for entries, field in cases:
        response = await household.post(IMPORT, json=bundle_of(*entries), headers=kader)
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["errors"][0]["field"] == field, response.json()
        assert response.json()["detail"].startswith(f"Bundle entry {field.split('.')[1]}")
    assert await count(household_db, "immunization_doses", baby["id"]) == 0
    assert await count(household_db, "fhir_imported_resources", baby["id"]) == 0
    not_a_bundle = await household.post(IMPORT, json={"resourceType": "Patient"}, headers=kader)
    assert not_a_bundle.status_code == 422
