"""The beneficiary lists' and aid reports' request and response bodies."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.events.topics import SpmField


class MatchCounts(BaseModel):
    exact_nik: int
    exact_kk: int
    likely: int
    unmatched: int


class RowOutcome(BaseModel):
    #: The row's number in the file (the header is row 1).
    row: int
    row_id: uuid.UUID
    match: Literal["nik", "kk", "likely", "none"]
    status: Literal["confirmed", "pending", "unmatched"]
    household_id: uuid.UUID | None
    member_id: uuid.UUID | None
    reason: str | None


class UploadReport(BaseModel):
    upload_id: uuid.UUID
    programme_id: uuid.UUID
    rows: int
    #: Rows of the previous list this upload replaced (an upload replaces the programme's whole list).
    replaced_rows: int
    counts: MatchCounts
    outcomes: list[RowOutcome]


class BeneficiaryPublic(BaseModel):
    id: uuid.UUID
    programme_id: uuid.UUID
    row_number: int
    #: Full for the owning agency, masked (`PPKKCC******SSSS`) for an admin.
    nik: str | None
    kk_number: str | None
    name: str
    birth_date: date
    period_start: date
    period_end: date
    note: str | None
    match: Literal["nik", "kk", "likely", "none"]
    status: Literal["confirmed", "pending", "rejected", "unmatched"]
    household_id: uuid.UUID | None
    member_id: uuid.UUID | None
    reviewed_by: str | None
    reviewed_at: datetime | None


class ReviewRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: Literal["confirm", "reject"]


class AidSource(BaseModel):
    """One aid a household receives: an aid code of its sosial profile, or a row of a programme's list."""

    kind: Literal["profile", "programme"]
    aid_code: str | None = None
    programme_id: uuid.UUID | None = None
    programme_name: str | None = None
    agency_id: uuid.UUID | None = None
    spm_field: SpmField | None = None
    service_type: str | None = None
    period_start: date | None = None
    period_end: date | None = None
    row_id: uuid.UUID | None = None
    match: Literal["nik", "kk", "likely"] | None = None
    status: Literal["confirmed", "pending"] | None = None
    member_id: uuid.UUID | None = None
    member_nik: str | None = Field(default=None, description="Full for an agency owning one of the household's "
                                                              "programmes, masked for everyone else")


class OverlapItem(BaseModel):
    household_id: uuid.UUID
    village_code: str
    posyandu_id: uuid.UUID
    spm_field: SpmField
    kk_number: str
    #: True when the caller owns one of the household's programmes (identifiers unmasked).
    identifiers_full: bool
    #: The confirmed sources that make the overlap.
    sources: list[AidSource]
    #: Likely matches still to be reviewed, shown apart: they do not count.
    likely: list[AidSource]


class UnservedItem(BaseModel):
    household_id: uuid.UUID
    village_code: str
    posyandu_id: uuid.UUID
    kk_number: str
    dtsen_decile: int | None
    #: False when the sosial profile has no aid list at all (not recorded), True when it records none.
    aid_recorded: bool
    open_sosial_needs: list[str]
