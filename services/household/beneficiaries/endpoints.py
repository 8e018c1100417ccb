"""HTTP routes of programme beneficiary lists (upload, list, review) and of the aid overlap and unserved reports."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from starlette.datastructures import UploadFile as StarletteUploadFile

from services.household.beneficiaries import service
from services.household.beneficiaries.schemas import (
    BeneficiaryPublic,
    MatchCounts,
    OverlapItem,
    ReviewRequest,
    RowOutcome,
    UnservedItem,
    UploadReport,
)
from services.household.beneficiaries.tables import Beneficiary
from services.household.identifiers import mask_kk, mask_nik
from services.household.settings import HouseholdSettings
from shared.auth import PrincipalDep
from shared.clock import NowDep, TodayDep
from shared.db import SessionDep
from shared.errors import PayloadTooLarge, ValidationFailed
from shared.events.programmes import MONTH_PATTERN
from shared.events.topics import SpmField
from shared.pagination import CursorParam, LimitParam, Page, decode_cursor, encode_cursor, page_of
from shared.region_codes import REGION_PREFIX_PATTERN

router = APIRouter(prefix="/api/v1", tags=["aid"])

#: The body limit of the upload routes (service spec), a setting.
PROGRAMMES_PATH = "/api/v1/programmes/"
Region = Annotated[str | None, Query(pattern=REGION_PREFIX_PATTERN, description="Region code prefix (2-10 digits)")]
Period = Annotated[str | None, Query(pattern=MONTH_PATTERN, description="Month `YYYY-MM` (default: this month)")]


def _public(row: Beneficiary, full: bool) -> BeneficiaryPublic:
    public = BeneficiaryPublic.model_validate(row, from_attributes=True)
    if not full:
        public.nik = mask_nik(row.nik) if row.nik else None
        public.kk_number = mask_kk(row.kk_number) if row.kk_number else None
    return public


_UPLOAD_BODY = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["file"], "properties": {"file": {
        "type": "string", "format": "binary",
        "description": "The list: CSV (UTF-8, `,` or `;`) or XLSX (first sheet); columns `nik` or `kk_number`, "
                       "`name`, `birth_date`, and optional `period` (YYYY-MM) and `note`"}}}}}}}


@router.post("/programmes/{programme_id}/beneficiaries", response_model=UploadReport,
             summary="Upload a programme's beneficiary list (CSV or XLSX); it replaces the previous list",
             responses={400: {"description": "A malformed multipart body"},
                        403: {"description": "Not the programme's agency (in its field) nor an admin"},
                        404: {"description": "No such programme known to this service"},
                        409: {"description": "The programme was cancelled"},
                        413: {"description": "The file is over HOUSEHOLD_BENEFICIARY_LIST_MAX_BYTES"},
                        422: {"description": "A malformed list: every problem by row and column; nothing stored"}},
             openapi_extra=_UPLOAD_BODY)
async def upload_beneficiaries(programme_id: uuid.UUID, request: Request, session: SessionDep,
                               principal: PrincipalDep, today: TodayDep, now: NowDep) -> Any:
    # Who may upload is settled before the body is read.
    await service.programme_of(session, principal, programme_id)
    settings: HouseholdSettings = request.state.settings
    form = await request.form(max_files=1, max_fields=4)
    file = form.get("file")
    if not isinstance(file, StarletteUploadFile):
        raise ValidationFailed("Send the list as the file of the multipart field `file`.",
                               errors=[{"field": "body.file", "message": "required: a CSV or XLSX file"}])
    content = await file.read(settings.household_beneficiary_list_max_bytes + 1)
    if len(content) > settings.household_beneficiary_list_max_bytes:
        raise PayloadTooLarge(f"The list is over {settings.household_beneficiary_list_max_bytes} bytes.")
    result = await service.upload_list(session=session, principal=principal, programme_id=programme_id,
                                       content=content, filename=file.filename, today=today, now=now,
                                       max_rows=settings.household_beneficiary_list_max_rows)
    upload = result.upload
    return UploadReport(
        upload_id=upload.id, programme_id=programme_id, rows=upload.rows, replaced_rows=result.replaced_rows,
        counts=MatchCounts(exact_nik=upload.exact_nik, exact_kk=upload.exact_kk, likely=upload.likely,
                           unmatched=upload.unmatched),
        outcomes=[RowOutcome(row=o.row_number, row_id=o.row_id, match=o.match, status=o.status,
                             household_id=o.household_id, member_id=o.member_id, reason=o.reason)
                  for o in result.outcomes])


@router.get("/programmes/{programme_id}/beneficiaries", response_model=Page[BeneficiaryPublic],
            summary="A programme's beneficiary list with its matches (owning agency and admin; audited)")
async def list_beneficiaries(programme_id: uuid.UUID, session: SessionDep, principal: PrincipalDep,
                             status: Literal["confirmed", "pending", "rejected", "unmatched"] | None = None,
                             limit: LimitParam = 50, cursor: CursorParam = None) -> Any:
    after = decode_cursor(cursor, int, uuid.UUID)
    rows, full = await service.list_rows(session=session, principal=principal, programme_id=programme_id,
                                         status=status, after=after, limit=limit)
    page, next_cursor = page_of(rows, limit, lambda r: (r.row_number, r.id))
    return Page(items=[_public(r, full) for r in page], next_cursor=next_cursor)


@router.post("/programmes/{programme_id}/beneficiaries/{row_id}/review", response_model=BeneficiaryPublic,
             summary="Confirm or reject a likely match (the owning agency)",
             responses={409: {"description": "The row is not a likely match waiting for review"}})
async def review_beneficiary(programme_id: uuid.UUID, row_id: uuid.UUID, payload: ReviewRequest,
                             session: SessionDep, principal: PrincipalDep, now: NowDep) -> Any:
    row = await service.review(session=session, principal=principal, programme_id=programme_id, row_id=row_id,
                               decision=payload.decision, now=now)
    return _public(row, True)


@router.get("/aid/overlaps", response_model=Page[OverlapItem],
            summary="Households receiving aid from two or more sources for one SPM field in a month (audited)")
async def aid_overlaps(session: SessionDep, principal: PrincipalDep, today: TodayDep, region: Region = None,
                       spm_field: SpmField = SpmField.SOSIAL, period: Period = None, limit: LimitParam = 50,
                       cursor: CursorParam = None) -> Any:
    after = decode_cursor(cursor, uuid.UUID)
    items, last = await service.overlaps(session=session, principal=principal, region=region, spm_field=spm_field,
                                         period=period, today=today, after=after[0] if after else None, limit=limit)
    return Page(items=items, next_cursor=encode_cursor(last) if last else None)


@router.get("/aid/unserved", response_model=Page[UnservedItem],
            summary="Needy households (decile 1-4 or an open sosial need) receiving no aid in a month (audited)")
async def aid_unserved(session: SessionDep, principal: PrincipalDep, today: TodayDep, region: Region = None,
                       period: Period = None, limit: LimitParam = 50, cursor: CursorParam = None) -> Any:
    after = decode_cursor(cursor, uuid.UUID)
    items, last = await service.unserved(session=session, principal=principal, region=region, period=period,
                                         today=today, after=after[0] if after else None, limit=limit)
    return Page(items=items, next_cursor=encode_cursor(last) if last else None)
