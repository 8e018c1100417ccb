"""Beneficiary lists of agency programmes: upload and match, review of likely matches, and the aid reports.

Matching, in order: the row's NIK to a live member (and so its household); else its KK number to a live household
(its current number or an earlier one); else a likely match by the duplicate check's key (lower-cased name and
birth date) to exactly one live member in the programme's regions, flagged for the owner's review; else unmatched.
An upload replaces the programme's list; the households it adds or drops have their needs refreshed (aid-overlap).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from services.household.beneficiaries import repository as repo
from services.household.beneficiaries.parsing import ListRow, parse_list
from services.household.beneficiaries.tables import Beneficiary, BeneficiaryUpload, KnownAgency, KnownProgramme
from services.household.identifiers import mask_kk, mask_nik
from services.household.needs.config import DEFAULT_CONFIG
from services.household.needs.service import refresh_needs
from services.household.tables import Household, Member
from shared.audit import record_read
from shared.auth import Principal, Role
from shared.errors import Conflict, Forbidden, NotFound, ValidationFailed
from shared.events.topics import SpmField


class ProgrammeNotFound(NotFound):
    pass


class BeneficiaryNotFound(NotFound):
    pass


class ProgrammeCancelled(Conflict):
    title, slug = "Programme cancelled", "programme-cancelled"


class AlreadyReviewed(Conflict):
    title, slug = "Already reviewed", "already-reviewed"


# --- the list -----------------------------------------------------------------------------------------------------


def owns(principal: Principal, programme: KnownProgramme) -> bool:
    """The programme's agency, acting in the programme's field (an agency of several fields acts per field)."""
    return (principal.role is Role.OPD and principal.agency_id == programme.agency_id
            and programme.spm_field in {f.value for f in principal.fields})


async def programme_of(session: AsyncSession, principal: Principal, programme_id: uuid.UUID, *,
                       admin: bool = True) -> KnownProgramme:
    """The programme, if the caller is its owning agency (or, with `admin`, an admin); 404 if unknown, else 403."""
    programme = await session.get(KnownProgramme, programme_id)
    if programme is None:
        raise ProgrammeNotFound(f"No programme {programme_id} is known to this service.")
    if not (owns(principal, programme) or (admin and principal.role is Role.ADMIN)):
        raise Forbidden("Only the agency that owns the programme" + (" or an admin" if admin else "")
                        + " may do this with its beneficiary list.")
    return programme


@dataclass
class Outcome:
    row_number: int
    match: Literal["nik", "kk", "likely", "none"]
    status: Literal["confirmed", "pending", "unmatched"]
    household_id: uuid.UUID | None = None
    member_id: uuid.UUID | None = None
    reason: str | None = None
    row_id: uuid.UUID = field(default_factory=uuid.uuid4)


@dataclass
class UploadResult:
    upload: BeneficiaryUpload
    replaced_rows: int
    outcomes: list[Outcome]


async def _match(session: AsyncSession, programme: KnownProgramme, rows: Sequence[ListRow]) -> list[Outcome]:
    by_nik = await repo.members_by_nik(session, [r.nik for r in rows if r.nik])
    by_kk = await repo.households_by_kk(session, [r.kk_number for r in rows if r.kk_number])
    undecided = [r for r in rows if not (r.nik and r.nik in by_nik) and not (r.kk_number and r.kk_number in by_kk)]
    likely = await repo.members_by_name_and_birth(session, [(r.name.lower(), r.birth_date) for r in undecided],
                                                  programme.region_codes)
    outcomes = []
    for row in rows:
        if row.nik and row.nik in by_nik:
            found = by_nik[row.nik]
            outcomes.append(Outcome(row.row_number, "nik", "confirmed", found.household_id, found.member_id))
        elif row.kk_number and row.kk_number in by_kk:
            outcomes.append(Outcome(row.row_number, "kk", "confirmed", by_kk[row.kk_number].household_id))
        else:
            # Two different NIKs are two people (as in the duplicate check): only a missing NIK leaves the doubt.
            candidates = [c for c in likely.get((row.name.lower(), row.birth_date), [])
                          if row.nik is None or c.nik is None]
            if len(candidates) == 1:
                outcomes.append(Outcome(row.row_number, "likely", "pending", candidates[0].household_id,
                                        candidates[0].member_id, "same name and birth date; to be reviewed"))
            else:
                outcomes.append(Outcome(row.row_number, "none", "unmatched", reason=(
                    f"{len(candidates)} members share the name and birth date; give the NIK" if candidates
                    else "no member or household with this NIK or KK number, nor one likely match")))
    return outcomes


async def _refresh(session: AsyncSession, household_ids: set[uuid.UUID], today: date) -> None:
    """Re-run the need rules on the households a list change touches (in id order: the lock order)."""
    for household_id in sorted(household_ids):
        household = await session.get(Household, household_id, with_for_update=True)
        if household is not None and household.status == "active":
            await refresh_needs(session, household, today=today)


async def upload_list(*, session: AsyncSession, principal: Principal, programme_id: uuid.UUID, content: bytes,
                      filename: str | None, today: date, now: datetime, max_rows: int) -> UploadResult:
    """Checks the whole list (422 and nothing stored if a row is wrong), matches it, replaces the programme's list."""
    programme = await programme_of(session, principal, programme_id)
    if programme.status == "cancelled":
        raise ProgrammeCancelled(f"Programme {programme_id} was cancelled: it takes no beneficiary list.")
    # One upload at a time per programme: the second waits for the first's list, then replaces it.
    await session.execute(select(KnownProgramme).where(col(KnownProgramme.id) == programme_id).with_for_update())
    rows = parse_list(content, today=today, programme_start=programme.period_start,
                      programme_end=programme.period_end, max_rows=max_rows)
    outcomes = await _match(session, programme, rows)
    previous = await repo.listed_households(session, programme_id)
    deleted = await session.execute(sa.delete(Beneficiary).where(col(Beneficiary.programme_id) == programme_id)
                                    .returning(col(Beneficiary.id)))
    replaced = len(deleted.all())
    counts = {m: sum(1 for o in outcomes if o.match == m) for m in ("nik", "kk", "likely", "none")}
    upload = BeneficiaryUpload(programme_id=programme_id, filename=(filename or None) and filename[:200],
                               rows=len(rows), exact_nik=counts["nik"], exact_kk=counts["kk"],
                               likely=counts["likely"], unmatched=counts["none"], uploaded_by=principal.sub,
                               uploaded_at=now)
    session.add(upload)
    await session.flush()
    table = Beneficiary.__table__  # type: ignore[attr-defined]
    await session.execute(sa.insert(table), [
        {"id": o.row_id, "programme_id": programme_id, "upload_id": upload.id, "row_number": r.row_number,
         "nik": r.nik, "kk_number": r.kk_number, "name": r.name, "birth_date": r.birth_date,
         "period_start": r.period_start, "period_end": r.period_end, "note": r.note, "match": o.match,
         "status": o.status, "household_id": o.household_id, "member_id": o.member_id}
        for r, o in zip(rows, outcomes, strict=True)])
    listed = {o.household_id for o in outcomes if o.status == "confirmed" and o.household_id is not None}
    await _refresh(session, previous | listed, today)
    return UploadResult(upload=upload, replaced_rows=replaced, outcomes=outcomes)


async def list_rows(*, session: AsyncSession, principal: Principal, programme_id: uuid.UUID, status: str | None,
                    after: tuple[int, uuid.UUID] | None, limit: int) -> tuple[list[Beneficiary], bool]:
    """Up to limit+1 rows of the list in file order, and whether the caller sees full identifiers (the owner);
    each row returned is audited as a read of personal data."""
    programme = await programme_of(session, principal, programme_id)
    query = select(Beneficiary).where(col(Beneficiary.programme_id) == programme_id)
    if status is not None:
        query = query.where(col(Beneficiary.status) == status)
    if after is not None:
        query = query.where(sa.tuple_(col(Beneficiary.row_number), col(Beneficiary.id)) > sa.tuple_(*after))
    rows = list((await session.execute(query.order_by(col(Beneficiary.row_number), col(Beneficiary.id))
                                       .limit(limit + 1))).scalars().all())
    owner = owns(principal, programme)
    purpose = "the agency's own programme beneficiary list" if owner else "administration"
    for row in rows[:limit]:
        await record_read(session, principal, resource_type="programme-beneficiary", resource_id=str(row.id),
                          subject_ref=str(row.household_id) if row.household_id else None, purpose=purpose,
                          fields=["nik", "kk_number", "name", "birth_date"])
    return rows, owner


async def review(*, session: AsyncSession, principal: Principal, programme_id: uuid.UUID, row_id: uuid.UUID,
                 decision: Literal["confirm", "reject"], now: datetime) -> Beneficiary:
    """The owner confirms (the household then counts as receiving) or rejects a likely match."""
    await programme_of(session, principal, programme_id, admin=False)
    row = await session.get(Beneficiary, row_id, with_for_update=True)
    if row is None or row.programme_id != programme_id:
        raise BeneficiaryNotFound(f"No row {row_id} in the list of programme {programme_id}.")
    if row.status != "pending":
        raise AlreadyReviewed(f"Row {row_id} is {row.status}: only a likely match waiting for review is decided.",
                              current_status=row.status)
    row.status = "confirmed" if decision == "confirm" else "rejected"
    row.reviewed_by, row.reviewed_at = principal.sub, now
    await session.flush()
    if row.status == "confirmed" and row.household_id is not None:
        await _refresh(session, {row.household_id}, now.date())
    return row


# --- the aid reports ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportScope:
    """Which households a report may list for the caller, and why the caller reads them (for the audit)."""

    prefix: str | None
    posyandu_ids: list[uuid.UUID] | None
    purpose: str


def month_bounds(period: str | None, today: date) -> tuple[date, date]:
    """The first and last day of a `YYYY-MM` month (default: this month); years 1900 to 9998, as in reporting."""
    if period is not None and not 1900 <= int(period[:4]) <= 9998:
        raise ValidationFailed("`period` lies outside the years 1900 to 9998.",
                               errors=[{"field": "query.period", "message": "a month of the years 1900 to 9998"}])
    first = date.fromisoformat(f"{period}-01") if period else today.replace(day=1)
    return first, (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)


async def report_scope(session: AsyncSession, principal: Principal, region: str | None,
                       spm_field: SpmField) -> ReportScope:
    """Admin: everything; pembina: their region prefix; an agency (OPD or partner) of the field: its jurisdiction;
    a kader: their posyandu's households. Anyone else, or a region outside the caller's, is a 403."""
    def within(prefix: str) -> str:
        if region is not None and not region.startswith(prefix):
            raise Forbidden(f"Region {region} lies outside your region {prefix}.")
        return region or prefix

    if principal.role is Role.ADMIN:
        return ReportScope(region, None, "administration")
    if principal.role is Role.PEMBINA and principal.region_prefix:
        return ReportScope(within(principal.region_prefix), None, "oversight within the pembina's region")
    if principal.role is Role.KADER:
        return ReportScope(region, list(principal.posyandu_ids), "kader of the households' posyandu")
    if principal.role is Role.OPD and principal.agency_id is not None:
        if spm_field not in principal.fields:
            raise Forbidden(f"The report of field {spm_field.value} is read by that field's agencies.")
        agency = await session.get(KnownAgency, principal.agency_id)
        if agency is None or agency.status != "active":
            raise Forbidden("Your agency is not (or no longer) active in the registry: its jurisdiction is unknown.")
        return ReportScope(within(agency.jurisdiction_code), None,
                           f"agency of the {spm_field.value} field within its jurisdiction")
    raise Forbidden("The aid reports are read by agencies, pembina, kader and admins.")


async def _households(session: AsyncSession, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Household]:
    rows = await session.execute(select(Household).where(col(Household.id).in_(list(ids))))
    return {h.id: h for h in rows.scalars().all()}


async def _niks(session: AsyncSession, member_ids: set[uuid.UUID]) -> dict[uuid.UUID, str | None]:
    rows = await session.execute(sa.select(col(Member.id), col(Member.nik)).where(col(Member.id).in_(member_ids)))
    return {r[0]: r[1] for r in rows.all()}


def _source(row: Beneficiary, programme: KnownProgramme, niks: dict[uuid.UUID, str | None],
            full: bool) -> dict[str, Any]:
    nik = niks.get(row.member_id) if row.member_id else None
    return {"kind": "programme", "programme_id": programme.id, "programme_name": programme.name,
            "agency_id": programme.agency_id, "spm_field": programme.spm_field,
            "service_type": programme.service_type, "period_start": row.period_start, "period_end": row.period_end,
            "row_id": row.id, "match": row.match, "status": row.status, "member_id": row.member_id,
            "member_nik": (nik if full else mask_nik(nik)) if nik else None}


async def overlaps(*, session: AsyncSession, principal: Principal, region: str | None, spm_field: SpmField,
                   period: str | None, today: date, after: uuid.UUID | None,
                   limit: int) -> tuple[list[dict[str, Any]], uuid.UUID | None]:
    """Households with two or more aid sources for the field in the month (its programme lists, and for sosial the
    profile's own aid; one source at least a programme list), their confirmed sources and, apart, the likely ones.
    Identifiers are full only for an agency owning one of the household's programmes; every household is audited."""
    scope = await report_scope(session, principal, region, spm_field)
    since, until = month_bounds(period, today)
    ids = await repo.overlapping_households(session, spm_field=spm_field.value, prefix=scope.prefix,
                                            posyandu_ids=scope.posyandu_ids, since=since, until=until, after=after,
                                            limit=limit + 1)
    page, more = ids[:limit], len(ids) > limit
    households = await _households(session, page)
    rows = await repo.list_rows_of(session, page, spm_field=spm_field.value, since=since, until=until)
    niks = await _niks(session, {r.member_id for r, _ in rows if r.member_id})
    aid = await repo.sosial_aid_of(session, page) if spm_field is SpmField.SOSIAL else {}
    items = []
    for household_id in page:
        household = households[household_id]
        mine = [(r, p) for r, p in rows if r.household_id == household_id]
        full = any(owns(principal, p) for _, p in mine)
        sources: list[dict[str, Any]] = [{"kind": "profile", "aid_code": code} for code in aid.get(household_id, [])]
        sources += [_source(r, p, niks, full) for r, p in mine if r.status == "confirmed"]
        items.append({"household_id": household_id, "village_code": household.village_code,
                      "posyandu_id": household.posyandu_id, "spm_field": spm_field,
                      "kk_number": household.kk_number if full else mask_kk(household.kk_number),
                      "identifiers_full": full, "sources": sources,
                      "likely": [_source(r, p, niks, full) for r, p in mine if r.status == "pending"]})
        await record_read(session, principal, resource_type="aid-overlap", resource_id=str(household_id),
                          subject_ref=str(household_id), purpose=f"aid overlap report: {scope.purpose}",
                          fields=["kk_number", "member_nik", "programmes"])
    return items, page[-1] if more else None


async def unserved(*, session: AsyncSession, principal: Principal, region: str | None, period: str | None,
                   today: date, after: uuid.UUID | None, limit: int) -> tuple[list[dict[str, Any]], uuid.UUID | None]:
    """Needy households (DTSEN decile 1 to the aid-exclusion limit, or an open sosial need) that receive nothing
    in the month: no aid in the sosial profile and on no programme list. Identifiers masked; every household
    listed is audited."""
    scope = await report_scope(session, principal, region, SpmField.SOSIAL)
    since, until = month_bounds(period, today)
    found = await repo.unserved_households(session, max_decile=DEFAULT_CONFIG.aid_exclusion_max_decile,
                                           prefix=scope.prefix, posyandu_ids=scope.posyandu_ids, since=since,
                                           until=until, after=after, limit=limit + 1)
    page, more = found[:limit], len(found) > limit
    households = await _households(session, [h for h, _, _ in page])
    needs = await repo.open_sosial_needs(session, [h for h, _, _ in page])
    items = []
    for household_id, decile, aid_recorded in page:
        household = households[household_id]
        items.append({"household_id": household_id, "village_code": household.village_code,
                      "posyandu_id": household.posyandu_id, "kk_number": mask_kk(household.kk_number),
                      "dtsen_decile": decile, "aid_recorded": aid_recorded,
                      "open_sosial_needs": needs.get(household_id, [])})
        await record_read(session, principal, resource_type="aid-unserved", resource_id=str(household_id),
                          subject_ref=str(household_id), purpose=f"unserved needy households report: {scope.purpose}",
                          fields=["kk_number", "dtsen_decile", "needs"])
    return items, page[-1][0] if more else None
