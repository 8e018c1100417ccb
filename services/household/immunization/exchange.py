"""FHIR exchange with the health system: a member's doses and measurements out, a bundle of them in.

The import is one transaction: an invalid resource, or a dose the child cannot have had, is a 422 naming the entry
and nothing is imported. Each Immunization or Observation is matched to a member by the NIK of its patient (an
identifier under SATUSEHAT's system, on the reference or on the Patient entry it points to) among the households
the caller may change, and then, per entry:

* `duplicate`: one of its identifiers was imported before for the member (``fhir_imported_resources``), or it is
  this platform's own export of a record the member has (this platform's `urn:uuid:` ids are never remembered:
  they name its own records);
* `matched`: the member already has the dose (vaccine + dose number + date) or a measurement that day with the same
  value: the identifiers are remembered, nothing is added;
* `created`: recorded as a kader's entry would be (same checks, events, needs);
* `unknown-patient`: no NIK, or no member with it that the caller may change;
* `conflict`: the member has that dose on another date, or the identifier was imported for another member (a
  person must decide; nothing changes);
* `skipped`: not a resource this import takes (another type, a vaccine not in the schedule, another measurement,
  a resource entered in error or not done).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ValidationError
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from services.household.access import writable_households
from services.household.immunization import fhir, repository, service
from services.household.immunization.fhir import BundleIn, ImmunizationIn, ObservationIn, PatientIn
from services.household.immunization.schedule import Schedule
from services.household.immunization.service import DoseCreate
from services.household.immunization.tables import ImportedResource
from services.household.measurements import service as measurements
from services.household.measurements.service import MeasurementCreate
from services.household.needs.service import refresh_needs
from services.household.tables import Household, Member
from shared.auth import Principal
from shared.db import utc_now
from shared.errors import Problem, ValidationFailed, field_errors

Outcome = Literal["created", "matched", "duplicate", "unknown-patient", "conflict", "skipped"]
NO_PATIENT = "no member with the patient's NIK that you may change"


class EntryResult(BaseModel):
    entry: int
    resource_type: str | None
    outcome: Outcome
    detail: str | None = None
    member_id: uuid.UUID | None = None
    #: The dose or measurement the entry became or was matched to.
    target_id: uuid.UUID | None = None


class ImportReport(BaseModel):
    entries: list[EntryResult]
    counts: dict[str, int]


@dataclass
class _Dose:
    entry: int
    resource: ImmunizationIn
    member: Member | None


@dataclass
class _Weighing:
    """The Observations of one member on one day: one measurement."""

    member: Member
    measured_on: date
    values: dict[str, tuple[int, ObservationIn, float]] = field(default_factory=dict)


def _invalid(entry: int, errors: list[dict[str, Any]], detail: str) -> ValidationFailed:
    return ValidationFailed(f"Bundle entry {entry}: {detail}",
                            errors=[{**e, "field": f"entry.{entry}.{e['field']}".rstrip(".")} for e in errors])


def _parse(entry: int, resource: dict[str, Any], model: type[BaseModel]) -> Any:
    try:
        return model.model_validate(resource)
    except ValidationError as exc:
        raise _invalid(entry, field_errors(exc.errors(), prefix="resource"),
                       f"not a valid {model.__name__.removesuffix('In')}") from exc


async def export_member(*, session: AsyncSession, principal: Principal, household_id: uuid.UUID,
                        member_id: uuid.UUID) -> dict[str, Any]:
    """GET .../members/{member_id}/fhir: the member's bundle (the NIK only for a reader who may see it), the read
    audited."""
    _, member, basis = await service.read_member(session=session, principal=principal, household_id=household_id,
                                                 member_id=member_id, resource_type="fhir.bundle")
    return await export_bundle(session=session, member=member, with_nik=basis.full_nik)


async def export_bundle(*, session: AsyncSession, member: Member, with_nik: bool) -> dict[str, Any]:
    """The member's doses (voided ones as entered-in-error) and measurements as a FHIR R4 Bundle."""
    doses = await service.doses_of(session, member.id)
    history = await measurements.history(session, member.id)
    return fhir.bundle(member, doses, history, await repository.load_schedule(session), with_nik=with_nik)


class _Import:
    def __init__(self, session: AsyncSession, principal: Principal, today: date, schedule: Schedule) -> None:
        self.session, self.principal, self.today, self.schedule = session, principal, today, schedule
        self.results: dict[int, EntryResult] = {}
        self.households: dict[uuid.UUID, Household] = {}
        self.members_by_nik: dict[str, Member | None] = {}

    def report(self, entry: int, resource_type: str | None, outcome: Outcome, detail: str | None = None,
               member: Member | None = None, target_id: uuid.UUID | None = None) -> None:
        self.results[entry] = EntryResult(entry=entry, resource_type=resource_type, outcome=outcome, detail=detail,
                                          member_id=member.id if member else None, target_id=target_id)

    async def member(self, nik: str | None) -> Member | None:
        """The active member with this NIK in a household the caller may change (None otherwise, alike)."""
        if nik is None:
            return None
        if nik not in self.members_by_nik:
            found = (await self.session.execute(select(Member).where(
                Member.nik == nik, Member.status == "active"))).scalars().first()
            household = (await self.session.execute(writable_households(self.principal).where(
                Household.id == found.household_id))).scalars().first() if found else None
            allowed = found is not None and household is not None
            self.members_by_nik[nik] = found if allowed else None
            if allowed and household is not None:
                self.households[household.id] = household
        return self.members_by_nik[nik]

    async def seen(self, identifiers: Sequence[fhir.Identifier]) -> ImportedResource | None:
        for identifier in _foreign(identifiers):
            found = await self.session.get(ImportedResource, (identifier.system, identifier.value))
            if found is not None:
                return found
        return None

    async def remember(self, identifiers: Sequence[fhir.Identifier], resource_type: str, member: Member,
                       target_id: uuid.UUID) -> None:
        for identifier in _foreign(identifiers):
            await self.session.execute(insert(ImportedResource).values(
                system=identifier.system, value=identifier.value, resource_type=resource_type, member_id=member.id,
                target_id=target_id, imported_by=self.principal.sub, imported_at=utc_now()).on_conflict_do_nothing())

    def already(self, entry: int, resource_type: str, earlier: ImportedResource, member: Member) -> None:
        if earlier.member_id == member.id:
            self.report(entry, resource_type, "duplicate", "imported before", member, earlier.target_id)
        else:
            self.report(entry, resource_type, "conflict", "its identifier was imported for another member", member)

    # -- doses -----------------------------------------------------------------------------------------------------

    def vaccine_of(self, resource: ImmunizationIn) -> str | None:
        code = resource.vaccineCode.code(fhir.VACCINE_SYSTEM)
        if code in self.schedule.vaccines:
            return code
        cvx = resource.vaccineCode.code(fhir.CVX_SYSTEM)
        return next((v for v, row in self.schedule.vaccines.items() if cvx and row.cvx == cvx), None)

    async def dose(self, item: _Dose) -> None:
        resource, member, entry = item.resource, item.member, item.entry
        if resource.status != "completed":
            self.report(entry, "Immunization", "skipped", f"status {resource.status}")
            return
        if member is None:
            self.report(entry, "Immunization", "unknown-patient", NO_PATIENT)
            return
        vaccine, number = self.vaccine_of(resource), resource.protocolApplied[0].doseNumberPositiveInt
        if vaccine is None:
            self.report(entry, "Immunization", "skipped", "the vaccine is not in the national schedule", member)
            return
        doses = (await repository.live_doses(self.session, [member.id]))[member.id]
        if (earlier := await self.seen(resource.identifier)) is not None:
            self.already(entry, "Immunization", earlier, member)
            return
        own = {f"urn:uuid:{d.id}": d for d in doses}
        if mine := next((own[i.value] for i in resource.identifier if i.system == fhir.ID_SYSTEM and i.value in own),
                        None):
            self.report(entry, "Immunization", "duplicate", "this platform's own record", member, mine.id)
            return
        same = next((d for d in doses if (d.vaccine, d.dose_number) == (vaccine, number)), None)
        if same is not None and same.given_on == resource.occurrenceDateTime:
            await self.remember(resource.identifier, "Immunization", member, same.id)
            self.report(entry, "Immunization", "matched", "already recorded", member, same.id)
            return
        if same is not None:
            self.report(entry, "Immunization", "conflict",
                        f"dose {number} of {vaccine} is recorded on {same.given_on.isoformat()}", member, same.id)
            return
        try:
            payload = DoseCreate(vaccine=vaccine, dose_number=number, given_on=resource.occurrenceDateTime,
                                 place=service.Place(resource.place), lot_number=resource.lotNumber)
        except ValueError as exc:
            raise _invalid(entry, [{"field": "resource", "message": str(exc)}], "not a dose this platform takes") \
                from None
        source = next((i.system for i in resource.identifier), "fhir")
        try:
            dose = await service.add_dose(session=self.session, principal=self.principal,
                                          household=self.households[member.household_id], member=member,
                                          payload=payload, schedule=self.schedule, today=self.today, source=source)
        except Problem as problem:
            raise _invalid(entry, [{"field": "resource", "message": e["message"]} for e in problem.errors or []]
                           or [{"field": "resource", "message": problem.detail}], problem.detail) from None
        await self.remember(resource.identifier, "Immunization", member, dose.id)
        self.report(entry, "Immunization", "created", None, member, dose.id)

    # -- measurements ----------------------------------------------------------------------------------------------

    async def weighing(self, weighing: _Weighing) -> None:
        member = weighing.member
        existing = [m for m in await measurements.history(self.session, member.id)
                    if m.measured_on == weighing.measured_on]
        fresh: dict[str, tuple[int, ObservationIn, float]] = {}
        for code, (entry, resource, value) in weighing.values.items():
            if (earlier := await self.seen(resource.identifier)) is not None:
                self.already(entry, "Observation", earlier, member)
                continue
            attribute = fhir.LOINC[code][0]
            same = next((m for m in existing if getattr(m, attribute) is not None
                         and abs(getattr(m, attribute) - value) < 0.05), None)
            own = next((m for m in existing for i in resource.identifier
                        if i.value == f"urn:uuid:{fhir.observation_id(m.id, code)}"), None)
            if own is not None:
                self.report(entry, "Observation", "duplicate", "this platform's own record", member, own.id)
            elif same is not None:
                await self.remember(resource.identifier, "Observation", member, same.id)
                self.report(entry, "Observation", "matched", "already measured that day", member, same.id)
            else:
                fresh[code] = (entry, resource, value)
        if not fresh:
            return
        entries = sorted(entry for entry, _, _ in fresh.values())
        body: dict[str, Any] = {"measured_on": weighing.measured_on}
        for code, (_, _, value) in fresh.items():
            body[fhir.LOINC[code][0]] = value
            if code in (fhir.HEIGHT, fhir.LENGTH):
                body["measured_lying"] = code == fhir.LENGTH
        try:
            payload = MeasurementCreate.model_validate(body)
            _, measurement = await measurements.record(session=self.session, principal=self.principal,
                                                       household_id=member.household_id, member_id=member.id,
                                                       payload=payload)
        except ValidationError as exc:
            raise _invalid(entries[0], [{"field": "resource.valueQuantity", "message": e["msg"]}
                                        for e in exc.errors()], "not a measurement this platform takes") from None
        except Problem as problem:
            raise _invalid(entries[0], [{"field": "resource", "message": problem.detail}], problem.detail) from None
        for entry, resource, _ in fresh.values():
            await self.remember(resource.identifier, "Observation", member, measurement.id)
            self.report(entry, "Observation", "created", None, member, measurement.id)


def _foreign(identifiers: Sequence[fhir.Identifier]) -> list[fhir.Identifier]:
    """The identifiers another system gave: this platform's own (`urn:uuid:` ids) name its records already, so
    they are matched to them rather than remembered."""
    return [i for i in identifiers if i.system != fhir.ID_SYSTEM]


def _quantity(entry: int, resource: ObservationIn, code: str) -> float:
    unit = fhir.LOINC[code][1]
    given = resource.valueQuantity.code or resource.valueQuantity.unit or unit
    factor = fhir.UNIT_FACTORS[unit].get(given)
    if factor is None:
        raise _invalid(entry, [{"field": "resource.valueQuantity.code", "message": f"expected a unit of {unit}"}],
                       f"the unit {given!r} is not one of {', '.join(fhir.UNIT_FACTORS[unit])}")
    return round(resource.valueQuantity.value * factor, 2)


async def import_bundle(*, session: AsyncSession, principal: Principal, bundle: BundleIn,
                        today: date) -> ImportReport:
    """Imports a bundle's Immunization and Observation resources (see the module's docstring); all or nothing."""
    run = _Import(session, principal, today, await repository.load_schedule(session))
    parsed: list[tuple[int, Any]] = []
    patients: dict[str, str | None] = {}
    for index, entry in enumerate(bundle.entry):
        kind = entry.resource.get("resourceType")
        model = fhir.RESOURCE_MODELS.get(kind) if isinstance(kind, str) else None
        if model is None:
            run.report(index, kind if isinstance(kind, str) else None, "skipped", "not a resource this import takes")
            continue
        resource = _parse(index, entry.resource, model)
        if isinstance(resource, PatientIn):
            nik = next((i.value for i in resource.identifier if i.system == fhir.NIK_SYSTEM), None)
            for ref in (entry.fullUrl, f"Patient/{entry.resource.get('id')}"):
                if ref:
                    patients[ref] = nik
            run.report(index, "Patient", "skipped", "patients are matched by NIK, not imported")
        else:
            parsed.append((index, resource))

    def nik_of(reference: fhir.Reference) -> str | None:
        if reference.identifier is not None and reference.identifier.system == fhir.NIK_SYSTEM:
            return reference.identifier.value
        return patients.get(reference.reference or "")

    doses: list[_Dose] = []
    weighings: dict[tuple[uuid.UUID, date], _Weighing] = {}
    for index, resource in parsed:
        if isinstance(resource, ImmunizationIn):
            doses.append(_Dose(index, resource, await run.member(nik_of(resource.patient))))
            continue
        member = await run.member(nik_of(resource.subject))
        code = next((c for c in fhir.LOINC if resource.code.code(fhir.LOINC_SYSTEM) == c), None)
        if resource.status not in ("final", "amended", "corrected") or code is None:
            run.report(index, "Observation", "skipped", "not a final weight, length/height, head or arm measurement")
        elif member is None:
            run.report(index, "Observation", "unknown-patient", NO_PATIENT)
        else:
            weighing = weighings.setdefault((member.id, resource.effectiveDateTime),
                                            _Weighing(member, resource.effectiveDateTime))
            if code in weighing.values or (code in (fhir.HEIGHT, fhir.LENGTH)
                                           and {fhir.HEIGHT, fhir.LENGTH} & set(weighing.values)):
                raise _invalid(index, [{"field": "resource.code", "message": "measured twice that day"}],
                               "a second value of the same measurement for the member on that day")
            weighing.values[code] = (index, resource, _quantity(index, resource, code))
    # Earlier doses first, so a bundle's dose 2 never arrives before its dose 1.
    for item in sorted(doses, key=lambda d: (d.resource.occurrenceDateTime,
                                             d.resource.protocolApplied[0].doseNumberPositiveInt, d.entry)):
        await run.dose(item)
    for weighing in sorted(weighings.values(), key=lambda w: w.measured_on):
        await run.weighing(weighing)
    for household in run.households.values():
        await service.sync_profile_status(session=session, household=household, today=today)
        await refresh_needs(session, household, today=today)
    results = [run.results[i] for i in sorted(run.results)]
    counts: dict[str, int] = {}
    for result in results:
        counts[result.outcome] = counts.get(result.outcome, 0) + 1
    return ImportReport(entries=results, counts=counts)


__all__ = ["EntryResult", "ImportReport", "export_bundle", "export_member", "import_bundle"]
